"""Leases, fencing and outages of the hub's own infrastructure.

A held event's lease is extended by a heartbeat while its worker lives; only the
claim's token may finish it; a database or Redis blip retries instead of failing; the
sweeper nudges only what nobody is on the way to deliver.
"""

import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.amocrm.ratelimit import limiter_get, limiter_reset
from integrations.sync import batches
from integrations.sync.claims import FencedLimiter, Heartbeat, claim_take, due_filter
from integrations.sync.delivery import account_drain, account_nudge, events_sweep
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow, InboundEvent
from integrations.sync.outcomes import Outcome, claim_finish
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item


@pytest.fixture
def flow(emulator_flow) -> Flow:
    return emulator_flow


def booking(flow: Flow, **fields) -> InboundEvent:
    payload = load_item("rdesk-booked.json")
    return InboundEventFactory(
        flow=flow,
        payload=payload,
        rdesk_id=str(payload["id"]),
        **{"lead_id": str(payload["lead_id"]), "status": EventStatus.QUEUED, **fields},
    )


def seconds_from_now(moment) -> float:
    return (moment - timezone.now()).total_seconds()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_heartbeat_keeps_extending_the_lease_while_the_worker_works(flow, settings):
    settings.HUB_DELIVERY_LEASE = 1.0
    event = booking(flow)
    claim = claim_take(account_id=flow.account_id, leads=50)

    with Heartbeat(claim, interval=0.2):
        time.sleep(1.5)  # longer than the lease
        event.refresh_from_db()

    assert seconds_from_now(event.next_attempt_at) > 0.5
    assert claim_take(account_id=flow.account_id, leads=50) is None


def test_finishing_touches_no_event_another_worker_took_over(flow):
    event = booking(flow)
    claim = claim_take(account_id=flow.account_id, leads=50)
    successor = uuid.uuid4()
    InboundEvent.objects.filter(pk=event.pk).update(claim_token=successor)

    claim_finish(claim=claim, outcomes={event.pk: Outcome(EventStatus.DELIVERED)}, logs=[])

    event.refresh_from_db()
    assert (event.status, event.claim_token, event.delivered_at) == (
        EventStatus.QUEUED,
        successor,
        None,
    )


def test_request_is_not_made_once_the_claim_was_taken_over(flow, emulator):
    event = booking(flow)
    claim = claim_take(account_id=flow.account_id, leads=50)
    InboundEvent.objects.filter(pk=event.pk).update(claim_token=uuid.uuid4())
    guard = FencedLimiter(None, claim)
    guard.carrying = [event.pk]

    with pytest.raises(Exception, match="taken over"), guard.slot("key"):
        pass


def test_database_blip_while_preparing_retries_instead_of_failing(flow, monkeypatch):
    def blip(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(batches, "lead_update_prepare", blip)
    event = booking(flow)

    assert account_drain(account_id=flow.account_id) == {event.pk: EventStatus.QUEUED}

    event.refresh_from_db()
    assert event.last_error == (
        "Hub infrastructure unavailable: OperationalError: "
        "server closed the connection unexpectedly"
    )
    assert seconds_from_now(event.next_attempt_at) > 0
    assert event.claim_token is None


def test_redis_blip_in_the_rate_limiter_retries_instead_of_failing(flow, emulator, monkeypatch):
    limiter = limiter_get()

    def down(key):
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(limiter, "slot", down)
    event = booking(flow)

    account_drain(account_id=flow.account_id)

    event.refresh_from_db()
    assert event.status == EventStatus.QUEUED
    assert event.last_error.startswith("Hub infrastructure unavailable: ConnectionError")
    assert emulator.state.requests == []
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.redis
def test_redis_clients_have_a_socket_timeout(settings):
    settings.AMOCRM_RATE_REDIS_URL = "redis://127.0.0.1:6379/15"
    limiter_reset()
    try:
        options = limiter_get().redis.connection_pool.connection_kwargs
    finally:
        limiter_reset()

    assert options["socket_timeout"] == settings.HUB_REDIS_SOCKET_TIMEOUT
    assert options["socket_connect_timeout"] == settings.HUB_REDIS_SOCKET_TIMEOUT
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] > 0


# --- the sweeper ------------------------------------------------------------------------


def test_sweeper_leaves_events_whose_nudge_waits_in_the_broker_queue(flow, enqueued):
    stale = timezone.now() - timedelta(minutes=5)
    booking(flow, next_attempt_at=stale)
    assert account_nudge(account_id=flow.account_id) == "sent"  # still queued: no worker

    assert events_sweep(grace=60) == 0

    assert enqueued.call_count == 1


def test_sweeper_nudges_again_once_the_nudge_is_taken_to_be_lost(flow, enqueued, settings):
    settings.HUB_NUDGE_TTL = 0.0
    booking(flow, next_attempt_at=timezone.now() - timedelta(minutes=5))
    account_nudge(account_id=flow.account_id)

    assert events_sweep(grace=60) == 1
    assert enqueued.call_count == 2


def test_sweeper_takes_an_expired_lease_without_waiting_for_the_grace(flow, enqueued):
    event = booking(flow)
    claim_take(account_id=flow.account_id, leads=50)
    InboundEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    assert events_sweep(grace=600) == 1


def test_sweeper_leaves_a_live_lease_alone(flow, enqueued):
    event = booking(flow)
    claim = claim_take(account_id=flow.account_id, leads=50)

    assert events_sweep(grace=0) == 0

    event.refresh_from_db()
    assert event.claim_token == claim.token
    assert seconds_from_now(event.next_attempt_at) > 5


def test_a_claim_reads_its_flow_and_account_once_for_all_its_events(flow, monkeypatch):
    for lead in range(10):
        booking(flow, lead_id=str(7000 + lead))
    decrypted = []
    monkeypatch.setattr(
        "hub.encryption.secret_decrypt", lambda token: decrypted.append(token) or "secret"
    )

    claim = claim_take(account_id=flow.account_id, leads=50)

    assert len(claim.events) == 10
    assert {id(event.flow) for event in claim.events} == {id(claim.events[0].flow)}
    assert claim.events[0].flow.account.pk == flow.account_id
    assert len(decrypted) <= 2  # the account's client secret, and no more per event


def _drain_queries(flow, events: int) -> int:
    for _ in range(events):
        booking(flow)  # one lead: all but the newest are superseded
    with CaptureQueriesContext(connection) as queries:
        statuses = account_drain(account_id=flow.account_id)
    assert len(statuses) == events
    return len(queries)


def test_a_leads_burst_is_settled_with_the_same_queries_however_many_events(flow):
    few = _drain_queries(flow, 2)
    InboundEvent.objects.all().delete()

    many = _drain_queries(flow, 40)

    assert many == few  # no column delivery reads was left unloaded, to be read per event


@pytest.mark.parametrize(
    ("held", "offset", "due"),
    [
        (False, -60, True),
        (False, 1, True),  # a nudge a little early: within the clock's tolerance
        (False, 60, False),
        (True, -1, True),  # its lease ran out
        (True, 1, False),  # its lease runs on, however close to the end
        (True, 60, False),
    ],
)
def test_an_event_is_due_when_its_time_or_its_lease_is_up(flow, held, offset, due):
    now = timezone.now()
    event = booking(
        flow,
        claim_token=uuid.uuid4() if held else None,
        next_attempt_at=now + timedelta(seconds=offset),
    )

    assert InboundEvent.objects.filter(due_filter(now), pk=event.pk).exists() is due
