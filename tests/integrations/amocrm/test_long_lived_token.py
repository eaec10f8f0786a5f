"""Private integrations: a long-lived token instead of OAuth, never refreshed (emulator)."""

import pytest

from integrations.amocrm.models import Account, Token
from integrations.amocrm.services import account_set_long_lived_token, connection_test
from integrations.sync.delivery import event_deliver
from integrations.sync.models import EventStatus, Flow
from tests.factories import AccountFactory, InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

LEAD_ID = 23392663


@pytest.fixture
def private_account(db, emulator) -> Account:
    """An account of a private integration: a long-lived token and no OAuth pair."""
    account = AccountFactory(
        base_url=emulator.base_url,
        client_id="emulator-client",
        client_secret="",
        state=Account.State.DISCONNECTED,
    )
    long_lived = emulator.state.issue_token(long_lived=True)["access_token"]
    account_set_long_lived_token(account=account, token=long_lived)
    return account


def booking(account):
    Flow.objects.filter(kind="booked").update(account=account)
    item = load_item("rdesk-booked.json")
    return InboundEventFactory(
        flow=Flow.objects.get(kind="booked"),
        payload=item,
        status=EventStatus.QUEUED,
        lead_id=item["lead_id"],
    )


def test_setting_a_long_lived_token_connects_the_account(private_account):
    private_account.refresh_from_db()

    assert private_account.state == Account.State.CONNECTED
    assert not Token.objects.filter(account=private_account).exists()


def test_long_lived_token_opens_the_api(private_account, emulator):
    assert connection_test(account=private_account)["subdomain"] == "emulator"

    (request,) = emulator.state.requests
    assert request["headers"]["authorization"] == f"Bearer {private_account.long_lived_token}"


def test_booking_is_delivered_with_the_long_lived_token(private_account, emulator):
    event = booking(private_account)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    assert emulator.state.lead(LEAD_ID)["price"] == 153887
    assert emulator.state.counters["refresh"] == 0


def test_revoked_long_lived_token_pauses_deliveries_without_a_refresh(private_account, emulator):
    emulator.state.revoke_tokens()  # revoked in the integration's Keys tab
    event = booking(private_account)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.next_attempt_at is None
    assert "reconnect it to resume" in event.last_error
    private_account.refresh_from_db()
    assert private_account.state == Account.State.DISCONNECTED
    assert emulator.state.counters["refresh"] == 0
    assert [r["path"] for r in emulator.state.requests] == ["/api/v4/leads/23392663"]
