"""Every call the hub makes to AmoCRM is on record: ApiCallRecord outside deliveries.

Token, catalogue and connection-test calls become ApiCallRecord rows with secrets
redacted; a delivery's calls are its DeliveryAttempt rows instead, never both.
"""

import json

import pytest
from django.utils import timezone

from integrations.amocrm.client import REDACTED, Unauthorized, Unavailable
from integrations.amocrm.models import Account, ApiCallRecord, Token
from integrations.amocrm.services import catalogue_refresh, connection_test
from integrations.amocrm.tokens import AccountTokens
from integrations.sync.delivery import event_deliver
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow
from tests.factories import InboundEventFactory
from tests.integrations.amocrm.consent import closed_url, connect
from tests.integrations.rdesk.payloads import load_item


def records() -> list[tuple[str, str, int | None]]:
    """(method, path with query, status) of each ApiCallRecord, oldest first."""
    return [
        (r.request_method, r.request_url.split("://", 1)[1].split("/", 1)[1], r.response_status)
        for r in ApiCallRecord.objects.order_by("started_at", "id")
    ]


def test_code_exchange_is_recorded_with_the_tokens_redacted(admin_client, new_account, emulator):
    connect(admin_client, new_account)

    record = ApiCallRecord.objects.get()
    assert record.account == new_account
    assert (record.request_method, record.request_url) == (
        "POST",
        f"{emulator.base_url}/oauth2/access_token",
    )
    assert record.request_body == {
        "grant_type": "authorization_code",
        "client_id": "emulator-client",
    }
    assert record.response_status == 200
    answer = json.loads(record.response_body)
    assert answer["access_token"] == answer["refresh_token"] == REDACTED
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 86400
    assert record.duration_ms >= 0
    assert record.error_class == ""


def test_refresh_is_recorded_with_the_tokens_redacted(emulator_account, emulator):
    Token.objects.filter(account=emulator_account).update(expires_at=timezone.now())

    AccountTokens(emulator_account).access_token()

    record = ApiCallRecord.objects.get()
    assert record.request_body == {"grant_type": "refresh_token", "client_id": "emulator-client"}
    answer = json.loads(record.response_body)
    assert answer["access_token"] == answer["refresh_token"] == REDACTED


def test_refused_refresh_is_recorded_with_amocrms_reason(emulator_account, emulator):
    emulator.state.revoke_tokens()
    Token.objects.filter(account=emulator_account).update(expires_at=timezone.now())

    with pytest.raises(Unauthorized):
        AccountTokens(emulator_account).access_token()

    record = ApiCallRecord.objects.get()
    assert record.response_status == 401
    assert record.error_class == "OAuthFailed"
    assert record.error_detail.endswith("(Token has been revoked)")
    assert json.loads(record.response_body)["hint"] == "Token has been revoked"


def test_refresh_that_reached_nothing_is_recorded(emulator_account):
    Account.objects.filter(pk=emulator_account.pk).update(base_url=closed_url())
    emulator_account.refresh_from_db()
    Token.objects.filter(account=emulator_account).update(expires_at=timezone.now())

    with pytest.raises(Unavailable):
        AccountTokens(emulator_account).access_token()

    record = ApiCallRecord.objects.get()
    assert (record.request_method, record.response_status, record.error_class) == (
        "POST",
        None,
        "Unavailable",
    )


def test_catalogue_calls_are_recorded(emulator_account):
    catalogue_refresh(account=emulator_account)

    assert records() == [
        ("GET", "api/v4/leads/custom_fields?page=1&limit=250", 200),
        ("GET", "api/v4/leads/pipelines?page=1&limit=250", 200),
    ]


def test_connection_test_is_recorded(emulator_account):
    connection_test(account=emulator_account)

    assert records() == [("GET", "api/v4/account?with=datetime_settings", 200)]
    assert json.loads(ApiCallRecord.objects.get().response_body)["subdomain"] == "emulator"


def test_call_that_reached_nothing_is_recorded_with_its_error(emulator_account):
    Account.objects.filter(pk=emulator_account.pk).update(base_url=closed_url())
    emulator_account.refresh_from_db()

    with pytest.raises(Unavailable):
        connection_test(account=emulator_account)

    record = ApiCallRecord.objects.get()
    assert record.response_status is None
    assert record.error_class == "Unavailable"
    assert record.error_detail == "AmoCRM unreachable: ConnectionError"


def test_delivery_calls_are_delivery_attempts_not_api_call_records(emulator_account, emulator):
    Flow.objects.filter(kind="booked").update(account=emulator_account)
    item = load_item("rdesk-booked.json")
    event = InboundEventFactory(
        flow=Flow.objects.get(kind="booked"),
        payload=item,
        status=EventStatus.QUEUED,
        lead_id=item["lead_id"],
    )
    # The pair is due: the refresh is an ApiCallRecord, the PATCH a DeliveryAttempt.
    Token.objects.filter(account=emulator_account).update(expires_at=timezone.now())

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    assert records() == [("POST", "oauth2/access_token", 200)]
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.event, attempt.request_method, attempt.response_status) == (
        event,
        "PATCH",
        200,
    )
    assert attempt.request_url == f"{emulator.base_url}/api/v4/leads/23392663"
