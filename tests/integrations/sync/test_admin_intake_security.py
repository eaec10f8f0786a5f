"""Securing a flow in the admin: the buttons, who may press them, the warnings, the checks."""

import base64
import hashlib
import html
import re
from datetime import timedelta
from io import StringIO

import pytest
from auditlog.models import LogEntry as AuditEntry
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.sync.intake_auth import flow_token_issue
from integrations.sync.models import EventStatus, Flow, InboundEvent
from tests.conftest import fixture_bytes

URL_IN_MESSAGE = re.compile(r"<code>(?P<url>[^<]+)</code>")


@pytest.fixture
def flow(db) -> Flow:
    return Flow.objects.get(kind="booked")


def press(client, flow: Flow, operation: str):
    return client.post(
        reverse("admin:sync_flow_intake_security", args=[flow.pk]), {"operation": operation}
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def shown_url(response) -> str:
    """The intake URL the success message shows (once)."""
    (found,) = [m for m in map(URL_IN_MESSAGE.search, messages_of(response)) if m]
    return html.unescape(found["url"])


def rdesk_post(url_path: str, **extra):
    """What RDESK sends to the URL it was given: the booking sample, from a fresh client."""
    return Client().post(
        url_path, fixture_bytes("rdesk/rdesk-booked.json"), content_type="application/json", **extra
    )


# --- the token button -----------------------------------------------------------------


def test_generating_a_token_shows_the_url_to_give_rdesk_and_it_works(hub_admin_client, flow):
    response = press(hub_admin_client, flow, "token")

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_flow_change", args=[flow.pk])
    url = shown_url(response)
    match = re.fullmatch(r"http://testserver/zdrav/booked/(?P<token>[A-Za-z0-9_-]{43})", url)
    assert match, url
    token = match["token"]
    flow.refresh_from_db()
    assert flow.intake_token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert rdesk_post(f"/zdrav/booked/{token}").status_code == 200
    assert rdesk_post("/zdrav/booked").status_code == 401


def test_the_token_is_kept_nowhere_but_in_the_message(hub_admin_client, flow):
    token = shown_url(press(hub_admin_client, flow, "token")).rsplit("/", 1)[1]

    stored = [
        *Flow.objects.filter(pk=flow.pk).values().get().values(),
        *LogEntry.objects.values_list("change_message", flat=True),
        *[str(entry.changes) for entry in AuditEntry.objects.all()],
    ]
    assert token not in " ".join(map(str, stored))
    assert LogEntry.objects.get(object_id=str(flow.pk)).change_message == (
        "Generated an intake token."
    )


def test_rotating_keeps_the_previous_token_until_the_grace_deadline(
    hub_admin_client, flow, settings
):
    settings.HUB_INTAKE_TOKEN_GRACE = 24 * 3600
    old = flow_token_issue(flow=flow)
    old_digest = Flow.objects.get(pk=flow.pk).intake_token_digest

    response = press(hub_admin_client, flow, "token")

    new = shown_url(response).rsplit("/", 1)[1]
    flow.refresh_from_db()
    assert flow.intake_previous_token_digest == old_digest
    remaining = flow.intake_previous_token_valid_until - timezone.now()
    assert timedelta(hours=23) < remaining <= timedelta(hours=24)
    assert "The previous token is accepted until" in " ".join(messages_of(response))
    assert rdesk_post(f"/zdrav/booked/{old}").status_code == 200
    assert rdesk_post(f"/zdrav/booked/{new}").status_code == 200


def test_the_flow_page_shows_the_grace_period(hub_admin_client, flow, settings):
    settings.HUB_INTAKE_TOKEN_GRACE = 7 * 24 * 3600
    flow_token_issue(flow=flow)
    flow_token_issue(flow=flow)

    page = html.unescape(
        hub_admin_client.get(reverse("admin:sync_flow_change", args=[flow.pk])).content.decode()
    )

    assert "A rotated token's predecessor stays valid for 1\xa0week." in page
    assert "the previous token is accepted too." in page


def test_the_public_address_setting_is_used_in_the_url(hub_admin_client, flow, settings):
    settings.HUB_INTAKE_BASE_URL = "https://hub.example.ru/"

    url = shown_url(press(hub_admin_client, flow, "token"))

    assert url.startswith("https://hub.example.ru/zdrav/booked/")


def test_removing_the_token_opens_the_flow_again_and_says_so(hub_admin_client, flow):
    token = flow_token_issue(flow=flow)

    response = press(hub_admin_client, flow, "token_remove")

    flow.refresh_from_db()
    assert (flow.intake_token_digest, flow.intake_previous_token_digest) == ("", "")
    assert any("This flow is open" in message for message in messages_of(response))
    assert rdesk_post(f"/zdrav/booked/{token}").status_code == 404
    assert rdesk_post("/zdrav/booked").status_code == 200


# --- the HTTP Basic button ------------------------------------------------------------


def test_generating_a_basic_password_shows_a_url_with_credentials_that_work(hub_admin_client, flow):
    flow.intake_basic_username = "rdesk"
    flow.save()

    url = shown_url(press(hub_admin_client, flow, "basic"))

    match = re.fullmatch(
        r"http://rdesk:(?P<password>[A-Za-z0-9_-]{43})@testserver/zdrav/booked", url
    )
    assert match, url
    header = "Basic " + base64.b64encode(f"rdesk:{match['password']}".encode()).decode()
    assert rdesk_post("/zdrav/booked", HTTP_AUTHORIZATION=header).status_code == 200
    assert rdesk_post("/zdrav/booked").status_code == 401
    assert match["password"] not in str(Flow.objects.filter(pk=flow.pk).values().get())


def test_a_username_is_made_up_when_none_is_typed(hub_admin_client, flow):
    url = shown_url(press(hub_admin_client, flow, "basic"))

    flow.refresh_from_db()
    assert re.fullmatch(r"rdesk-[0-9a-f]{8}", flow.intake_basic_username)
    assert url.startswith(f"http://{flow.intake_basic_username}:")


def test_with_a_token_set_the_basic_url_names_where_the_token_goes(hub_admin_client, flow):
    flow_token_issue(flow=flow)

    url = shown_url(press(hub_admin_client, flow, "basic"))

    assert url.endswith("@testserver/zdrav/booked/<token>")


def test_removing_basic_stops_asking_for_it(hub_admin_client, flow):
    press(hub_admin_client, flow, "basic")

    press(hub_admin_client, flow, "basic_remove")

    assert rdesk_post("/zdrav/booked").status_code == 200


# --- who may ----------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ["operator_client", "auditor_client"])
@pytest.mark.parametrize("operation", ["token", "basic", "token_remove", "basic_remove"])
def test_roles_without_change_flow_are_refused_403(request, flow, role_client, operation):
    token = flow_token_issue(flow=flow)
    before = Flow.objects.filter(pk=flow.pk).values().get()

    response = press(request.getfixturevalue(role_client), flow, operation)

    assert response.status_code == 403
    assert Flow.objects.filter(pk=flow.pk).values().get() == before
    assert rdesk_post(f"/zdrav/booked/{token}").status_code == 200


@pytest.mark.parametrize(("role", "shown"), [("hub_admin", True), ("auditor", False)])
def test_the_buttons_are_only_on_the_page_of_those_who_may_press_them(
    request, client, flow, role, shown
):
    client.force_login(request.getfixturevalue(role))
    button = reverse("admin:sync_flow_intake_security", args=[flow.pk])

    page = client.get(reverse("admin:sync_flow_change", args=[flow.pk])).content.decode()

    assert (button in page) is shown


def test_a_get_is_not_allowed(hub_admin_client, flow):
    response = hub_admin_client.get(reverse("admin:sync_flow_intake_security", args=[flow.pk]))

    assert response.status_code == 405


def test_an_unknown_operation_changes_nothing(hub_admin_client, flow):
    response = press(hub_admin_client, flow, "everything")

    assert response.status_code == 302
    assert Flow.objects.get(pk=flow.pk).intake_is_open
    assert messages_of(response) == ["Nothing was changed: choose one of the buttons."]


# --- warnings -------------------------------------------------------------------------


def test_an_open_flows_page_warns(hub_admin_client, flow):
    response = hub_admin_client.get(reverse("admin:sync_flow_change", args=[flow.pk]))

    assert (
        "This flow is open: anyone who can reach /zdrav/booked can post to it. Set a token, "
        "HTTP Basic credentials or allowed addresses under “Intake security”."
    ) in messages_of(response)


def test_a_secured_flows_page_does_not_warn(hub_admin_client, flow):
    flow_token_issue(flow=flow)

    response = hub_admin_client.get(reverse("admin:sync_flow_change", args=[flow.pk]))

    assert not any("This flow is open" in message for message in messages_of(response))


def test_the_flow_list_marks_open_flows(hub_admin_client, flow):
    flow_token_issue(flow=flow)

    response = hub_admin_client.get(reverse("admin:sync_flow_changelist"))

    content = html.unescape(response.content.decode())
    assert "⚠ open to anyone" in content  # the medical-centre flow
    assert '<td class="field-intake_security">token</td>' in content
    assert messages_of(response) == [
        "1 flow accepts posts from anyone: see the “intake security” column."
    ]


# --- the allow-list's validation --------------------------------------------------------


def test_an_allow_list_entry_that_is_not_a_network_is_refused_with_its_line(flow):
    flow.intake_allowed_networks = "203.0.113.0/24\nrdesk.example.ru"

    with pytest.raises(ValidationError) as raised:
        flow.full_clean()

    assert raised.value.message_dict == {
        "intake_allowed_networks": ["“rdesk.example.ru” is not an IPv4 or IPv6 address or network."]
    }


def test_a_basic_password_needs_a_username(flow):
    flow.intake_basic_password_digest = "salt$digest"
    flow.intake_basic_username = ""

    with pytest.raises(ValidationError) as raised:
        flow.full_clean()

    assert list(raised.value.message_dict) == ["intake_basic_username"]


# --- manage.py check --deploy -----------------------------------------------------------


def open_flow_warnings(**kwargs) -> list:
    return [m for m in run_checks(**kwargs) if m.id == "sync.W001"]


def test_deploy_check_warns_for_each_open_flow(db):
    warnings = open_flow_warnings(include_deployment_checks=True)

    assert [warning.obj for warning in warnings] == list(Flow.objects.order_by("endpoint_path"))
    assert all("Intake security" in warning.hint for warning in warnings)


def test_manage_py_check_deploy_names_the_open_flows(db):
    Flow.objects.filter(kind="mc").update(intake_allowed_networks="203.0.113.0/24")
    output = StringIO()

    call_command("check", "--deploy", stdout=output, stderr=output)

    assert "sync.W001" in output.getvalue()
    assert "(/zdrav/booked) accepts posts from anyone" in output.getvalue()
    assert "(/zdrav/mc)" not in output.getvalue()


def test_deploy_check_is_quiet_for_secured_flows(db):
    for flow in Flow.objects.all():
        flow.intake_allowed_networks = "203.0.113.0/24"
        flow.save()

    assert open_flow_warnings(include_deployment_checks=True) == []


def test_open_flows_are_not_reported_outside_the_deploy_checks(db):
    assert open_flow_warnings() == []


def test_an_invalid_trusted_proxy_is_a_start_up_error(settings):
    settings.HUB_TRUSTED_PROXIES = ["10.0.0.0/8", "nginx"]

    errors = [m for m in run_checks() if m.id == "sync.E001"]

    assert [error.msg for error in errors] == [
        "HUB_TRUSTED_PROXIES: “nginx” is not an IPv4 or IPv6 address or network."
    ]


def test_an_event_refused_at_the_door_is_listed_as_rejected(hub_admin_client, flow):
    flow_token_issue(flow=flow)
    rdesk_post("/zdrav/booked")

    event = InboundEvent.objects.get()

    assert event.status == EventStatus.REJECTED
    page = hub_admin_client.get(reverse("admin:sync_inboundevent_change", args=[event.pk]))
    assert "This flow requires its token" in html.unescape(page.content.decode())
