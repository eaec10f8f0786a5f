"""A claim holds each lead by its newest pending event; the older ones end with it.

Under a burst for one lead the older events are written once, when the claim ends, and
never read by the worker; only when the newest gives no update are they taken into the
claim, and the newest of them that does is sent.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from integrations.amocrm.models import Account
from integrations.sync import batches
from integrations.sync.claims import ClaimLost, claim_confirm, claim_take
from integrations.sync.delivery import account_drain, claim_deliver
from integrations.sync.models import EventStatus, Flow, InboundEvent
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

SAMPLE = load_item("rdesk-booked.json")
LEAD = str(SAMPLE["lead_id"])


@pytest.fixture
def flow(emulator_flow) -> Flow:
    return emulator_flow


def booking(flow: Flow, minutes_ago: float, payload: dict = SAMPLE) -> InboundEvent:
    """A pending event of the sample's lead, received ``minutes_ago``."""
    return InboundEventFactory(
        flow=flow,
        payload=payload,
        lead_id=LEAD,
        status=EventStatus.QUEUED,
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
        next_attempt_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_claim_holds_a_lead_by_its_newest_event_alone(flow):
    older = [booking(flow, minutes_ago=5 - i) for i in range(3)]
    newest = booking(flow, minutes_ago=1)

    claim = claim_take(account_id=flow.account_id, leads=50)

    assert [event.pk for event in claim.events] == [newest.pk]
    left = InboundEvent.objects.filter(pk__in=[event.pk for event in older])
    assert set(left.values_list("claim_token", "attempts")) == {(None, 0)}
    assert claim_take(account_id=flow.account_id, leads=50) is None  # the lead is held


def test_older_events_end_superseded_by_the_newest_without_being_claimed(flow, emulator):
    older = [booking(flow, minutes_ago=5 - i) for i in range(3)]
    newest = booking(flow, minutes_ago=1)

    statuses = account_drain(account_id=flow.account_id)

    assert statuses == {
        **{event.pk: EventStatus.SKIPPED for event in older},
        newest.pk: EventStatus.DELIVERED,
    }
    ended = InboundEvent.objects.filter(pk__in=[event.pk for event in older])
    assert set(ended.values_list("attempts", "next_attempt_at", "claim_token")) == {(0, None, None)}
    assert all(e.last_error.startswith(f"Superseded by event #{newest.pk} ") for e in ended)
    assert len(emulator.state.requests) == 1


def test_an_older_event_is_sent_when_the_newest_gives_no_update(flow, emulator):
    older = booking(flow, minutes_ago=3)
    oldest = booking(flow, minutes_ago=4)
    invalid = booking(flow, minutes_ago=1, payload=load_item("rdesk-booked-invalid.json"))

    statuses = account_drain(account_id=flow.account_id)

    assert statuses == {
        invalid.pk: EventStatus.FAILED,
        older.pk: EventStatus.DELIVERED,
        oldest.pk: EventStatus.SKIPPED,
    }
    oldest.refresh_from_db()
    assert oldest.last_error.startswith(f"Superseded by event #{older.pk} ")


def test_older_events_of_a_disconnected_account_wait_paused_with_the_newest(flow, emulator):
    account = flow.account
    account.state_set(Account.State.DISCONNECTED, "Refresh refused")
    account.save()
    older = booking(flow, minutes_ago=2)
    newest = booking(flow, minutes_ago=1)

    account_drain(account_id=flow.account_id)

    waiting = InboundEvent.objects.filter(pk__in=[older.pk, newest.pk])
    assert set(waiting.values_list("status", "next_attempt_at")) == {(EventStatus.QUEUED, None)}
    assert all("reconnect it to resume" in event.last_error for event in waiting)


def test_older_events_wait_for_the_newests_retry_when_delivery_breaks_off(flow, monkeypatch):
    def blip(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(batches, "lead_update_prepare", blip)
    older = booking(flow, minutes_ago=2)
    newest = booking(flow, minutes_ago=1)

    account_drain(account_id=flow.account_id)

    newest.refresh_from_db()
    older.refresh_from_db()
    assert older.status == EventStatus.QUEUED
    assert older.next_attempt_at == newest.next_attempt_at > timezone.now()
    assert older.last_error == newest.last_error
    assert claim_take(account_id=flow.account_id, leads=50) is None  # no backoff skipped


def test_a_claim_taken_over_leaves_the_older_events_to_its_successor(flow, emulator):
    older = booking(flow, minutes_ago=2)
    newest = booking(flow, minutes_ago=1)
    claim = claim_take(account_id=flow.account_id, leads=50)
    InboundEvent.objects.filter(pk=newest.pk).update(claim_token=uuid.uuid4())

    statuses, _, _ = claim_deliver(claim)

    assert older.pk not in statuses
    older.refresh_from_db()
    assert (older.status, older.last_error) == (EventStatus.QUEUED, "")
    assert emulator.state.requests == []


def test_an_event_arriving_while_its_lead_is_held_is_left_for_the_next_claim(flow, emulator):
    held = booking(flow, minutes_ago=2)
    claim = claim_take(account_id=flow.account_id, leads=50)
    arrived = booking(flow, minutes_ago=0)

    claim_deliver(claim)

    arrived.refresh_from_db()
    assert arrived.status == EventStatus.QUEUED
    assert account_drain(account_id=flow.account_id) == {arrived.pk: EventStatus.DELIVERED}
    held.refresh_from_db()
    assert held.status == EventStatus.DELIVERED


def test_a_lead_taken_over_fences_off_every_event_of_the_lapsed_claim(flow):
    held = booking(flow, minutes_ago=2)
    lapsed = claim_take(account_id=flow.account_id, leads=50)
    newer = booking(flow, minutes_ago=1)
    ran_out = timezone.now() - timedelta(seconds=1)
    InboundEvent.objects.filter(pk=held.pk).update(next_attempt_at=ran_out)

    successor = claim_take(account_id=flow.account_id, leads=50)

    assert {event.pk for event in successor.events} == {held.pk, newer.pk}
    with pytest.raises(ClaimLost):
        claim_confirm(lapsed, [held.pk])


def test_an_older_event_is_still_sent_after_a_lease_ran_out_unnoticed(flow, emulator):
    older = booking(flow, minutes_ago=2)
    invalid = booking(flow, minutes_ago=1, payload=load_item("rdesk-booked-invalid.json"))
    claim = claim_take(account_id=flow.account_id, leads=50)
    ran_out = timezone.now() - timedelta(seconds=1)
    InboundEvent.objects.filter(pk=invalid.pk).update(next_attempt_at=ran_out)

    statuses, _, _ = claim_deliver(claim)

    assert statuses == {invalid.pk: EventStatus.FAILED, older.pk: EventStatus.DELIVERED}


def test_older_events_of_a_flow_without_an_account_fail_with_the_newest(booked_flow):
    booked_flow.account = None
    booked_flow.save()
    older = booking(booked_flow, minutes_ago=2)
    newest = booking(booked_flow, minutes_ago=1)

    statuses = account_drain(account_id=None)

    assert statuses == {older.pk: EventStatus.FAILED, newest.pk: EventStatus.FAILED}
