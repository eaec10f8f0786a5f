"""The account's connection as the admin sees it: buttons, state, token ages, the banner."""

import html
import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone
from django.utils.formats import date_format

from integrations.amocrm.models import Account, CustomField, Pipeline, Token
from integrations.sync.delivery import event_deliver
from integrations.sync.models import EventStatus, Flow
from tests.factories import AccountFactory, InboundEventFactory
from tests.integrations.amocrm.consent import closed_url, connect
from tests.integrations.rdesk.payloads import load_item

LEAD_ID = 23392663
NBSP = "\xa0"


def change_page(client, account) -> str:
    response = client.get(f"/admin/amocrm/account/{account.pk}/change/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def readonly(content: str, field: str) -> str:
    """What the change page shows for a read-only field (its inner HTML)."""
    match = re.search(
        rf'field-{field}">.*?<div class="readonly">(.*?)</div>', content, flags=re.DOTALL
    )
    assert match, f"no read-only field {field} on the page"
    return match.group(1)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def banner(content: str) -> list[str]:
    """The texts of the disconnected-account banner entries on an admin page."""
    return [
        re.sub(r"<[^>]+>", "", item)
        for item in re.findall(r'<li class="error">(AmoCRM account .*?)</li>', content, re.DOTALL)
    ]


@pytest.fixture
def flow_account(emulator_account) -> Account:
    """The emulator account, delivering the seeded booking flow."""
    Flow.objects.filter(kind="booked").update(account=emulator_account)
    return emulator_account


def booking_event(flow_account):
    item = load_item("rdesk-booked.json")
    return InboundEventFactory(
        flow=Flow.objects.get(kind="booked"),
        payload=item,
        status=EventStatus.QUEUED,
        rdesk_id=str(item["id"]),
        lead_id=str(item["lead_id"]),
    )


def disconnect(account, reason="Refresh refused: Token has been revoked") -> None:
    account.state_set(Account.State.DISCONNECTED, reason)
    account.save()


# --- the change page ------------------------------------------------------------------


def test_account_page_has_connect_and_test_connection_buttons(admin_client, emulator_account):
    content = change_page(admin_client, emulator_account)

    pk = emulator_account.pk
    assert f'<a href="/amocrm/oauth/start/{pk}/" class="viewsitelink">Connect to AmoCRM</a>' in (
        content
    )
    assert f'action="/admin/amocrm/account/{pk}/test-connection/"' in content
    assert ">Test connection</button>" in content


def test_new_account_page_has_no_connection_buttons(admin_client, db):
    response = admin_client.get("/admin/amocrm/account/add/")

    assert response.status_code == 200
    assert b"Connect to AmoCRM" not in response.content
    assert b"Test connection" not in response.content


def test_account_page_shows_the_connection_state_and_its_reason(admin_client, emulator_account):
    disconnect(emulator_account)

    content = change_page(admin_client, emulator_account)

    assert readonly(content, "state") == "Disconnected"
    assert readonly(content, "state_reason") == "Refresh refused: Token has been revoked"


def test_account_page_shows_when_the_access_token_expires(admin_client, emulator_account):
    expires_at = timezone.now() + timedelta(hours=5, seconds=30)
    Token.objects.filter(account=emulator_account).update(expires_at=expires_at)

    content = change_page(admin_client, emulator_account)

    when = date_format(timezone.localtime(expires_at), "DATETIME_FORMAT")
    assert readonly(content, "token_expires_at") == f"{when} (in 5{NBSP}hours)"


def test_account_page_says_an_expired_access_token_is_refreshed_on_use(
    admin_client, emulator_account
):
    expires_at = timezone.now() - timedelta(minutes=3)
    Token.objects.filter(account=emulator_account).update(expires_at=expires_at)

    content = change_page(admin_client, emulator_account)

    when = date_format(timezone.localtime(expires_at), "DATETIME_FORMAT")
    assert readonly(content, "token_expires_at") == f"{when} (expired; refreshed on next use)"


def test_account_page_shows_the_refresh_tokens_age_and_time_left(admin_client, emulator_account):
    Token.objects.filter(account=emulator_account).update(
        refreshed_at=timezone.now() - timedelta(days=10, hours=-1)
    )

    content = change_page(admin_client, emulator_account)

    assert readonly(content, "refresh_token_age") == (
        f"issued 1{NBSP}week, 2{NBSP}days ago; AmoCRM revokes it if unused for 80 more days "
        "(beat renews it well before)"
    )


def test_account_page_without_a_token_says_so(admin_client, new_account):
    content = change_page(admin_client, new_account)

    assert readonly(content, "token_expires_at") == "none"
    assert readonly(content, "refresh_token_age") == "none"


def test_account_page_shows_only_whether_secrets_are_set(admin_client, emulator_account):
    token = Token.objects.get(account=emulator_account)

    content = change_page(admin_client, emulator_account)

    assert readonly(content, "client_secret_set") == (
        '<img src="/static/admin/img/icon-yes.svg" alt="True">'
    )
    assert readonly(content, "long_lived_token_set") == (
        '<img src="/static/admin/img/icon-no.svg" alt="False">'
    )
    assert '<input type="password" name="client_secret"' in content
    assert '<input type="password" name="long_lived_token"' in content
    for secret in ("emulator-secret", token.access_token, token.refresh_token):
        assert secret not in content


def test_accounts_list_shows_state_and_expiry(admin_client, emulator_account):
    disconnect(emulator_account)

    response = admin_client.get("/admin/amocrm/account/")

    content = html.unescape(response.content.decode())
    assert '<td class="field-state">Disconnected</td>' in content
    assert f"(in 23{NBSP}hours, 59{NBSP}minutes)" in content


# --- Test connection ------------------------------------------------------------------


def test_connection_button_reports_the_amocrm_account_it_reached(
    admin_client, emulator_account, emulator
):
    response = admin_client.post(
        f"/admin/amocrm/account/{emulator_account.pk}/test-connection/", follow=True
    )

    assert response.redirect_chain == [
        (f"/admin/amocrm/account/{emulator_account.pk}/change/", 302)
    ]
    assert messages_of(response) == [
        f"{emulator_account}: connected to AmoCRM account 'Здравница (emulator)' "
        "(id 30000001, subdomain emulator)."
    ]
    assert [(r["method"], r["path"]) for r in emulator.state.requests] == [
        ("GET", "/api/v4/account")
    ]


def test_connection_button_reports_an_unreachable_amocrm(admin_client, emulator_account):
    Account.objects.filter(pk=emulator_account.pk).update(base_url=closed_url())

    response = admin_client.post(
        f"/admin/amocrm/account/{emulator_account.pk}/test-connection/", follow=True
    )

    assert messages_of(response) == [
        f"{emulator_account}: Unavailable: AmoCRM unreachable: ConnectionError"
    ]
    assert '<li class="error">' in response.content.decode()


def test_connection_button_reports_revoked_tokens_and_disconnects(
    admin_client, emulator_account, emulator
):
    emulator.state.revoke_tokens()  # what disabling the integration in AmoCRM does

    response = admin_client.post(
        f"/admin/amocrm/account/{emulator_account.pk}/test-connection/", follow=True
    )

    assert messages_of(response) == [
        f"{emulator_account}: Unauthorized: Некорректный запрос: В запросе отсутствует ряд "
        "параметров или параметры невалидны (Token has been revoked)"
    ]
    emulator_account.refresh_from_db()
    assert emulator_account.state == Account.State.DISCONNECTED
    assert "Token has been revoked" in emulator_account.state_reason


def test_connection_button_for_an_unknown_account_is_not_found(admin_client, db):
    assert admin_client.post("/admin/amocrm/account/999999/test-connection/").status_code == 404


def test_connection_action_reports_each_selected_account(admin_client, emulator_account):
    unreachable = AccountFactory(name="Offline", base_url=closed_url())
    Token.objects.create(
        account=unreachable, access_token="a", expires_at=timezone.now() + timedelta(hours=1)
    )

    response = admin_client.post(
        "/admin/amocrm/account/",
        {
            "action": "test_connection",
            ACTION_CHECKBOX_NAME: [emulator_account.pk, unreachable.pk],
        },
        follow=True,
    )

    assert set(messages_of(response)) == {
        f"{emulator_account}: connected to AmoCRM account 'Здравница (emulator)' "
        "(id 30000001, subdomain emulator).",
        "Offline: Unavailable: AmoCRM unreachable: ConnectionError",
    }


# --- the disconnected banner ----------------------------------------------------------


def test_banner_names_a_disconnected_account_its_reason_and_how_to_reconnect(
    admin_client, flow_account
):
    disconnect(flow_account)

    response = admin_client.get("/admin/")

    content = html.unescape(response.content.decode())
    assert banner(content) == [
        f"AmoCRM account {flow_account} is disconnected: Refresh refused: Token has been "
        "revoked. Its deliveries are paused until it is connected again (Connect to AmoCRM)."
    ]
    assert f'<a href="/amocrm/oauth/start/{flow_account.pk}/">Connect to AmoCRM</a>' in content


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/sync/inboundevent/", "/admin/amocrm/account/", "/admin/sync/flow/"]
)
def test_banner_is_on_every_admin_page(admin_client, flow_account, path):
    disconnect(flow_account)

    content = html.unescape(admin_client.get(path).content.decode())

    assert len(banner(content)) == 1


def test_no_banner_while_the_account_is_connected(admin_client, flow_account):
    assert banner(admin_client.get("/admin/").content.decode()) == []


def test_no_banner_for_a_disconnected_account_no_flow_uses(admin_client, new_account):
    assert banner(admin_client.get("/admin/").content.decode()) == []


def test_banner_disappears_after_reconnecting(admin_client, flow_account):
    disconnect(flow_account)
    assert len(banner(admin_client.get("/admin/").content.decode())) == 1

    response = connect(admin_client, flow_account)

    assert response.status_code == 200
    assert banner(html.unescape(response.content.decode())) == []
    assert banner(admin_client.get("/admin/").content.decode()) == []


# --- paused deliveries resume on reconnect --------------------------------------------


def test_reconnecting_through_the_callback_enqueues_the_paused_events(
    admin_client, flow_account, enqueued, django_capture_on_commit_callbacks
):
    disconnect(flow_account)
    paused = [booking_event(flow_account), booking_event(flow_account)]
    # Both are about one lead: draining the first pauses both.
    assert event_deliver(event_id=paused[0].pk) == EventStatus.QUEUED

    with django_capture_on_commit_callbacks(execute=True):
        response = connect(admin_client, flow_account)

    assert response.status_code == 200
    assert [call.args[0][0] for call in enqueued.call_args_list] == [flow_account.pk]
    for event in paused:
        event.refresh_from_db()
        assert event.status == EventStatus.QUEUED
        assert event.next_attempt_at is not None
        assert event.attempts == 0


def test_refused_refresh_pauses_deliveries_until_the_admin_reconnects(
    admin_client, flow_account, emulator, enqueued, django_capture_on_commit_callbacks
):
    # The pair is due for a refresh, but AmoCRM revoked the refresh token (3 months unused).
    Token.objects.filter(account=flow_account).update(expires_at=timezone.now())
    emulator.state.age_refresh_tokens(91 * 24 * 3600)
    event = booking_event(flow_account)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.next_attempt_at is None  # waits; the sweeper leaves it alone
    assert event.last_error.startswith(f"Paused: AmoCRM account '{flow_account}' is disconnected")
    assert emulator.state.counters["invalid_grant"] == 1
    assert emulator.state.counters["leads_updated"] == 0
    content = html.unescape(admin_client.get("/admin/").content.decode())
    assert banner(content) == [
        f"AmoCRM account {flow_account} is disconnected: Refresh refused: Некорректный "
        "запрос: В запросе отсутствует ряд параметров или параметры невалидны (Token has been "
        "revoked). Its deliveries are paused until it is connected again (Connect to AmoCRM)."
    ]

    with django_capture_on_commit_callbacks(execute=True):
        connect(admin_client, flow_account)
    assert [call.args[0][0] for call in enqueued.call_args_list] == [flow_account.pk]

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED
    assert emulator.state.lead(LEAD_ID)["price"] == 153887


def test_test_connection_refuses_a_get_so_prefetching_changes_nothing(
    admin_client, emulator_account
):
    response = admin_client.get(f"/admin/amocrm/account/{emulator_account.pk}/test-connection/")

    assert response.status_code == 405


# --- who may connect, test and fetch --------------------------------------------------


def test_hub_admin_account_page_has_connect_and_test_connection_buttons(
    hub_admin_client, emulator_account
):
    content = change_page(hub_admin_client, emulator_account)

    assert f'href="/amocrm/oauth/start/{emulator_account.pk}/"' in content
    assert ">Test connection</button>" in content


@pytest.mark.parametrize("role_client", ["auditor_client", "operator_client"])
def test_viewer_account_page_has_no_connect_or_test_connection_buttons(
    request, role_client, emulator_account
):
    content = change_page(request.getfixturevalue(role_client), emulator_account)

    assert "Connect to AmoCRM" not in content
    assert "/amocrm/oauth/start/" not in content
    assert "Test connection" not in content
    assert "test-connection" not in content


def test_viewer_account_page_shows_no_secrets_only_whether_they_are_set(
    auditor_client, emulator_account
):
    Account.objects.filter(pk=emulator_account.pk).update(long_lived_token="long-lived-secret")
    token = Token.objects.get(account=emulator_account)

    content = change_page(auditor_client, emulator_account)

    for secret in ("emulator-secret", "long-lived-secret", token.access_token, token.refresh_token):
        assert secret not in content
    assert 'field-client_secret"' not in content
    assert 'field-long_lived_token"' not in content
    assert readonly(content, "client_secret_set") == (
        '<img src="/static/admin/img/icon-yes.svg" alt="True">'
    )
    assert readonly(content, "long_lived_token_set") == (
        '<img src="/static/admin/img/icon-yes.svg" alt="True">'
    )


def test_auditor_posting_test_connection_is_refused_and_amocrm_is_not_called(
    auditor_client, emulator_account, emulator
):
    response = auditor_client.post(f"/admin/amocrm/account/{emulator_account.pk}/test-connection/")

    assert response.status_code == 403
    assert emulator.state.requests == []


@pytest.mark.parametrize("action", ["test_connection", "refresh_catalogue"])
def test_auditor_is_not_offered_the_account_actions_nor_can_run_them(
    auditor_client, emulator_account, emulator, action
):
    listing = auditor_client.get("/admin/amocrm/account/").content.decode()
    response = auditor_client.post(
        "/admin/amocrm/account/",
        {"action": action, ACTION_CHECKBOX_NAME: [emulator_account.pk]},
        follow=True,
    )

    assert f'value="{action}"' not in listing
    assert response.status_code == 403
    assert emulator.state.requests == []
    assert not CustomField.objects.filter(account=emulator_account).exists()


def test_hub_admin_fetches_the_catalogue_with_the_action(hub_admin_client, emulator_account):
    response = hub_admin_client.post(
        "/admin/amocrm/account/",
        {"action": "refresh_catalogue", ACTION_CHECKBOX_NAME: [emulator_account.pk]},
        follow=True,
    )

    fields = CustomField.objects.filter(account=emulator_account).count()
    pipelines = Pipeline.objects.filter(account=emulator_account).count()
    assert fields > 0
    assert messages_of(response) == [f"{emulator_account}: {fields} fields, {pipelines} pipelines."]


def test_hub_admin_tests_the_connection_with_the_button(hub_admin_client, emulator_account):
    response = hub_admin_client.post(
        f"/admin/amocrm/account/{emulator_account.pk}/test-connection/", follow=True
    )

    assert messages_of(response) == [
        f"{emulator_account}: connected to AmoCRM account 'Здравница (emulator)' "
        "(id 30000001, subdomain emulator)."
    ]


def test_banner_for_an_auditor_names_the_account_without_a_connect_link(
    auditor_client, flow_account
):
    disconnect(flow_account)

    content = html.unescape(auditor_client.get("/admin/").content.decode())

    assert banner(content) == [
        f"AmoCRM account {flow_account} is disconnected: Refresh refused: Token has been "
        "revoked. Its deliveries are paused until it is connected again."
    ]
    assert "/amocrm/oauth/start/" not in content


# --- the inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["redirect_uri", "base_url"])
def test_url_inputs_are_wide_enough_for_a_whole_url(admin_client, emulator_account, name):
    content = change_page(admin_client, emulator_account)

    tag = re.search(rf'<input type="url" name="{name}"[^>]*>', content).group(0)
    assert 'class="vURLField"' in tag
    assert 'size="80"' in tag
    assert "width: 100%" in tag
