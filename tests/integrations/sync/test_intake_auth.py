"""The intake's security battery: every flow kind, refused at the door and stored, or let in.

Each test runs against every seeded flow (one per kind, with its kind's real sample body,
``tests/fixtures/rdesk/rdesk-<kind>.json``), so a new flow kind inherits the battery.
"""

import base64
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.sync.intake_auth import flow_basic_issue, flow_token_issue
from integrations.sync.models import EventStatus, Flow, FlowKind, InboundEvent
from tests.conftest import fixture_bytes

JSON = "application/json"
CLIENT = "203.0.113.7"  # RDESK, as the hub should see it
PROXY = "10.0.0.2"  # nginx, in front of the hub


@dataclass
class Target:
    flow: Flow
    body: bytes

    @property
    def path(self) -> str:
        return self.flow.endpoint_path

    @property
    def items(self) -> int:
        data = json.loads(self.body)
        return len(data) if isinstance(data, list) else 1


@pytest.fixture(params=FlowKind.values)
def target(request, db) -> Target:
    """A seeded flow of each kind, with its kind's real RDESK sample."""
    kind = request.param
    return Target(flow=Flow.objects.get(kind=kind), body=fixture_bytes(f"rdesk/rdesk-{kind}.json"))


@pytest.fixture
def token(target) -> str:
    return flow_token_issue(flow=target.flow)


@pytest.fixture
def basic(target) -> str:
    """The flow's Authorization header value (it now asks for HTTP Basic)."""
    username, password = flow_basic_issue(flow=target.flow)
    return basic_header(username, password)


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def allow(target: Target, networks: str) -> None:
    target.flow.intake_allowed_networks = networks
    target.flow.save()


def post(client, target: Target, *, path: str | None = None, **extra):
    """POST the target's sample; ``extra`` is WSGI environ (REMOTE_ADDR, HTTP_...)."""
    return client.post(path or target.path, target.body, content_type=JSON, **extra)


def post_query(client, target: Target, token: str, **extra):
    return client.post(f"{target.path}?token={token}", target.body, content_type=JSON, **extra)


def assert_accepted(response, target: Target) -> None:
    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    statuses = list(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == [EventStatus.RECEIVED] * target.items


def assert_refused(response, status: int, code: str, *, secrets: tuple[str, ...] = ()):
    """Answered ``status`` with ``code``; one rejected event, with the reason, no secret."""
    assert response.status_code == status
    answer = response.json()
    assert (answer["status"], answer["error"]) == ("error", code)
    events = list(InboundEvent.objects.all())
    assert len(events) == 1, f"expected one stored event, found {len(events)}"
    event = events[0]
    assert event.status == EventStatus.REJECTED
    assert event.last_error == answer["detail"]
    assert event.payload is None
    stored = json.dumps(
        [event.headers, event.last_error, event.remote_addr, bytes(event.raw_body).decode()]
    )
    for secret in secrets:
        assert secret not in stored
    return event


# --- tokens ---------------------------------------------------------------------------


def test_no_token_is_refused_401_on_the_flows_own_path(client, target, token):
    response = post(client, target)

    event = assert_refused(response, 401, "token_missing", secrets=(token,))
    assert event.flow == target.flow
    assert "WWW-Authenticate" not in response.headers


def test_wrong_token_in_the_path_is_refused_401(client, target, token):
    wrong = "x" * len(token)

    response = post(client, target, path=f"{target.path}/{wrong}")

    assert_refused(response, 401, "token_invalid", secrets=(token, wrong))


def test_wrong_token_in_the_query_is_refused_401(client, target, token):
    response = post_query(client, target, "not-the-token")

    assert_refused(response, 401, "token_invalid", secrets=(token, "not-the-token"))


def test_token_in_the_path_is_accepted(client, target, token):
    response = post(client, target, path=f"{target.path}/{token}")

    assert_accepted(response, target)


def test_token_in_the_query_is_accepted(client, target, token):
    response = post_query(client, target, token)

    assert_accepted(response, target)


def test_a_right_token_with_a_wrong_one_beside_it_is_refused(client, target, token):
    response = client.post(
        f"{target.path}/{token}?token=not-the-token", target.body, content_type=JSON
    )

    assert_refused(response, 401, "token_invalid", secrets=(token,))


def test_old_token_is_accepted_inside_the_grace_period(client, target, token):
    new = flow_token_issue(flow=target.flow)

    assert post(client, target, path=f"{target.path}/{token}").status_code == 200
    assert post_query(client, target, new).status_code == 200
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2 * target.items


def test_old_token_after_the_grace_period_is_refused_401(client, target, token):
    flow_token_issue(flow=target.flow)
    target.flow.intake_previous_token_valid_until = timezone.now() - timedelta(seconds=1)
    target.flow.save()

    response = post(client, target, path=f"{target.path}/{token}")

    assert_refused(response, 401, "token_expired", secrets=(token,))


def test_grace_period_follows_the_setting(client, target, token, settings):
    settings.HUB_INTAKE_TOKEN_GRACE = 3600
    before = timezone.now()

    flow_token_issue(flow=target.flow)

    until = Flow.objects.get(pk=target.flow.pk).intake_previous_token_valid_until
    assert before + timedelta(hours=1) <= until <= timezone.now() + timedelta(hours=1)


def test_a_second_rotation_refuses_the_first_token_at_once(client, target, token):
    flow_token_issue(flow=target.flow)
    flow_token_issue(flow=target.flow)

    response = post(client, target, path=f"{target.path}/{token}")

    assert_refused(response, 401, "token_invalid", secrets=(token,))


def test_the_token_is_in_no_log_line(client, target, token, caplog):
    with caplog.at_level(logging.DEBUG):
        post(client, target, path=f"{target.path}/{token}")
        allow(target, "198.51.100.0/24")
        post(client, target, path=f"{target.path}/{token}")

    assert caplog.records
    assert token not in caplog.text
    assert all(token not in json.dumps(vars(r), default=str) for r in caplog.records)


# --- HTTP Basic -----------------------------------------------------------------------


def test_missing_basic_credentials_are_refused_401_with_a_challenge(client, target, basic):
    response = post(client, target)

    assert_refused(response, 401, "credentials_missing")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="amo-hub"'


def test_wrong_basic_password_is_refused_401(client, target, basic):
    username = target.flow.intake_basic_username
    wrong = basic_header(username, "not-the-password")

    response = post(client, target, HTTP_AUTHORIZATION=wrong)

    assert_refused(response, 401, "credentials_invalid", secrets=("not-the-password",))
    assert response.headers["WWW-Authenticate"] == 'Basic realm="amo-hub"'


def test_wrong_basic_username_is_refused_401(client, target, basic):
    password = base64.b64decode(basic.split()[1]).decode().partition(":")[2]

    response = post(client, target, HTTP_AUTHORIZATION=basic_header("someone", password))

    assert_refused(response, 401, "credentials_invalid", secrets=(password,))


def test_malformed_basic_header_is_refused_401(client, target, basic):
    response = post(client, target, HTTP_AUTHORIZATION="Basic %%%")

    assert_refused(response, 401, "credentials_invalid")


def test_right_basic_credentials_are_accepted(client, target, basic):
    response = post(client, target, HTTP_AUTHORIZATION=basic)

    assert_accepted(response, target)
    assert "authorization" not in {name.lower() for name in InboundEvent.objects.first().headers}


def test_a_new_basic_password_refuses_the_old_one(client, target, basic):
    flow_basic_issue(flow=target.flow)

    response = post(client, target, HTTP_AUTHORIZATION=basic)

    assert_refused(response, 401, "credentials_invalid")


# --- addresses ------------------------------------------------------------------------


def test_address_outside_the_allow_list_is_refused_403(client, target):
    allow(target, "198.51.100.0/24\n2001:db8::/32  # RDESK over IPv6")

    response = post(client, target, REMOTE_ADDR=CLIENT)

    event = assert_refused(response, 403, "address_not_allowed")
    assert event.remote_addr == CLIENT
    assert response.json()["detail"] == f"Address {CLIENT} may not post to this flow."


@pytest.mark.parametrize("address", ["198.51.100.20", "2001:db8::7", "::ffff:198.51.100.20"])
def test_address_inside_the_allow_list_is_accepted(client, target, address):
    allow(target, "198.51.100.0/24\n2001:db8::/32")

    response = post(client, target, REMOTE_ADDR=address)

    assert_accepted(response, target)


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_refused_403(client, target, settings):
    settings.HUB_TRUSTED_PROXIES = [PROXY]
    allow(target, f"{CLIENT}/32")

    response = post(client, target, REMOTE_ADDR="192.0.2.66", HTTP_X_FORWARDED_FOR=CLIENT)

    event = assert_refused(response, 403, "address_not_allowed")
    assert event.remote_addr == "192.0.2.66"


def test_forwarded_for_from_a_trusted_proxy_is_honoured(client, target, settings):
    settings.HUB_TRUSTED_PROXIES = ["10.0.0.0/24"]
    allow(target, f"{CLIENT}/32")

    # The left-most entry is whatever the caller claimed; nginx appended the real one.
    response = post(
        client, target, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"198.51.100.1, {CLIENT}"
    )

    assert_accepted(response, target)
    assert set(InboundEvent.objects.values_list("remote_addr", flat=True)) == {CLIENT}


def test_a_caller_claiming_an_allowed_address_through_the_proxy_is_refused(
    client, target, settings
):
    settings.HUB_TRUSTED_PROXIES = ["10.0.0.0/24"]
    allow(target, f"{CLIENT}/32")

    response = post(client, target, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{CLIENT}, 192.0.2.66")

    assert assert_refused(response, 403, "address_not_allowed").remote_addr == "192.0.2.66"


# --- together -------------------------------------------------------------------------


def test_every_method_set_must_pass(client, target, token, basic):
    allow(target, f"{CLIENT}/32")
    path = f"{target.path}/{token}"

    assert post(client, target, path=path, REMOTE_ADDR=CLIENT).status_code == 401
    assert post(client, target, REMOTE_ADDR=CLIENT, HTTP_AUTHORIZATION=basic).status_code == 401
    assert post(client, target, path=path, HTTP_AUTHORIZATION=basic).status_code == 403
    assert InboundEvent.objects.filter(status=EventStatus.REJECTED).count() == 3

    response = post(client, target, path=path, REMOTE_ADDR=CLIENT, HTTP_AUTHORIZATION=basic)

    assert response.status_code == 200
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == target.items


def test_a_refused_body_is_kept_only_up_to_the_limit(client, target, token, settings):
    settings.HUB_REJECTED_BODY_BYTES = 16

    post(client, target)

    event = InboundEvent.objects.get()
    assert bytes(event.raw_body) == target.body[:16]


# --- open flows and paths -------------------------------------------------------------


def test_an_open_flow_answers_exactly_as_before(client, target):
    response = post(client, target, REMOTE_ADDR=CLIENT, HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert_accepted(response, target)
    assert InboundEvent.objects.first().remote_addr == CLIENT


def test_a_token_path_of_a_flow_without_a_token_is_not_found(client, target):
    response = post(client, target, path=f"{target.path}/anything")

    assert response.status_code == 404
    assert not InboundEvent.objects.exists()


def test_a_get_of_a_token_path_is_answered_405(client, target, token):
    assert client.get(f"{target.path}/{token}").status_code == 405
