"""Replaying events: history appended, never rewritten; who, when and how recorded."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from integrations.sync.delivery import event_deliver
from integrations.sync.models import DeliveryAttempt, EventStatus, InboundEvent, Replay
from integrations.sync.replay import FilterError, events_matching, events_replay
from tests.factories import DeliveryAttemptFactory, FlowFactory, InboundEventFactory
from tests.integrations.sync.test_delivery import (
    LEAD_ANSWER,
    LEAD_URL,
    booking_event,
    enqueued_accounts,
    seconds_from_now,
)

MOSCOW = ZoneInfo("Europe/Moscow")
FINISHED = [EventStatus.FAILED, EventStatus.SKIPPED, EventStatus.DELIVERED]


def attempt_rows(event) -> list[dict]:
    return list(DeliveryAttempt.objects.filter(event=event).order_by("pk").values())


# --- the service ----------------------------------------------------------------------


def test_replay_queues_the_event_and_keeps_its_attempt_count(booked_flow, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=3, last_error="boom")

    assert events_replay(event_ids=[event.pk], source=Replay.Source.EVENT_PAGE) == 1

    event.refresh_from_db()
    assert event.status == EventStatus.QUEUED
    assert (event.attempts, event.attempts_at_replay, event.last_error) == (3, 3, "")
    assert abs(seconds_from_now(event.replayed_at)) < 5
    assert abs(seconds_from_now(event.next_attempt_at)) < 5


def test_replay_leaves_earlier_attempts_untouched(booked_flow, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=2)
    DeliveryAttemptFactory(event=event, response_status=503, error_class="Unavailable")
    DeliveryAttemptFactory(event=event, response_status=503, error_class="Unavailable")
    before = attempt_rows(event)

    events_replay(event_ids=[event.pk], source=Replay.Source.ADMIN_ACTION)

    assert attempt_rows(event) == before


def test_replay_records_who_asked_when_how_and_what_the_event_was(booked_flow, operator, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=4)

    events_replay(event_ids=[event.pk], user=operator, source=Replay.Source.EVENT_PAGE)

    replay = Replay.objects.get(event=event)
    assert replay.requested_by == operator
    assert replay.source == Replay.Source.EVENT_PAGE
    assert (replay.previous_status, replay.attempts_before) == (EventStatus.FAILED, 4)
    assert abs(seconds_from_now(replay.requested_at)) < 5


def test_each_replay_of_the_same_event_is_recorded(booked_flow, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=1)
    events_replay(event_ids=[event.pk], source=Replay.Source.COMMAND)
    InboundEvent.objects.filter(pk=event.pk).update(status=EventStatus.DELIVERED, attempts=2)

    events_replay(event_ids=[event.pk], source=Replay.Source.COMMAND)

    assert list(
        Replay.objects.filter(event=event)
        .order_by("pk")
        .values_list("previous_status", "attempts_before")
    ) == [(EventStatus.FAILED, 1), (EventStatus.DELIVERED, 2)]


@pytest.mark.parametrize("status", FINISHED)
def test_every_finished_event_can_be_replayed(booked_flow, enqueued, status):
    event = booking_event(booked_flow, status=status, attempts=1)

    assert events_replay(event_ids=[event.pk], source=Replay.Source.ADMIN_ACTION) == 1

    assert Replay.objects.get(event=event).previous_status == status


@pytest.mark.parametrize("status", [EventStatus.RECEIVED, EventStatus.QUEUED])
def test_pending_events_are_left_alone(
    booked_flow, enqueued, django_capture_on_commit_callbacks, status
):
    due = timezone.now() + timedelta(minutes=3)
    event = booking_event(booked_flow, status=status, attempts=2, next_attempt_at=due)

    with django_capture_on_commit_callbacks(execute=True):
        assert events_replay(event_ids=[event.pk], source=Replay.Source.ADMIN_ACTION) == 0

    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == (status, 2, due)
    assert event.replayed_at is None
    assert not Replay.objects.exists()
    assert enqueued.call_count == 0


def test_rejected_events_are_not_replayed(
    booked_flow, enqueued, django_capture_on_commit_callbacks
):
    rejected = booking_event(
        booked_flow, status=EventStatus.REJECTED, last_error="Body is empty; expected JSON."
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert events_replay(event_ids=[rejected.pk], source=Replay.Source.ADMIN_ACTION) == 0

    rejected.refresh_from_db()
    assert rejected.status == EventStatus.REJECTED
    assert rejected.last_error == "Body is empty; expected JSON."
    assert not Replay.objects.exists()
    assert enqueued.call_count == 0


def test_only_the_finished_events_of_a_mixed_selection_are_replayed(booked_flow, enqueued):
    failed = booking_event(booked_flow, status=EventStatus.FAILED)
    queued = booking_event(booked_flow, status=EventStatus.QUEUED)
    rejected = booking_event(booked_flow, status=EventStatus.REJECTED)

    count = events_replay(
        event_ids=[failed.pk, queued.pk, rejected.pk], source=Replay.Source.ADMIN_ACTION
    )

    assert count == 1
    assert list(Replay.objects.values_list("event", flat=True)) == [failed.pk]


def test_next_delivery_after_a_replay_appends_a_new_attempt(booked_flow, amocrm_http, enqueued):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=2)
    earlier = DeliveryAttemptFactory(event=event, response_status=503, error_class="Unavailable")
    before = attempt_rows(event)
    events_replay(event_ids=[event.pk], source=Replay.Source.EVENT_PAGE)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    event.refresh_from_db()
    assert event.attempts == 3
    rows = attempt_rows(event)
    assert rows[:1] == before
    assert len(rows) == 2
    assert rows[1]["id"] > earlier.pk
    assert rows[1]["response_status"] == 200


def test_backoff_restarts_after_a_replay(booked_flow, amocrm_http, enqueued, settings):
    settings.HUB_RETRY_BASE_DELAY = 10.0
    settings.HUB_RETRY_MAX_DELAY = 3600.0
    amocrm_http.patch(LEAD_URL, body="down", status=503)
    # Nine attempts before the replay: without a restart the next wait would be capped.
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=9)
    events_replay(event_ids=[event.pk], source=Replay.Source.EVENT_PAGE)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.attempts == 10
    assert 4 <= seconds_from_now(event.next_attempt_at) <= 10


def test_workers_are_nudged_after_commit_not_before(
    booked_flow, enqueued, django_capture_on_commit_callbacks
):
    failed = booking_event(booked_flow, status=EventStatus.FAILED, attempts=9)
    delivered = booking_event(booked_flow, status=EventStatus.DELIVERED, attempts=1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        events_replay(event_ids=[failed.pk, delivered.pk], source=Replay.Source.ADMIN_ACTION)
    assert enqueued.call_count == 0
    for callback in callbacks:
        callback()

    assert enqueued_accounts(enqueued) == [booked_flow.account_id]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_nothing_is_enqueued_until_the_transaction_commits(booked_flow, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED)

    with transaction.atomic():
        events_replay(event_ids=[event.pk], source=Replay.Source.ADMIN_ACTION)
        assert enqueued.call_count == 0

    assert enqueued_accounts(enqueued) == [booked_flow.account_id]


def test_thousands_of_events_are_replayed_in_a_few_statements(
    booked_flow, enqueued, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    now = timezone.now()
    events = InboundEvent.objects.bulk_create(
        InboundEvent(
            flow=booked_flow,
            raw_body=b"{}",
            body_hash="0" * 64,
            status=EventStatus.FAILED,
            attempts=5,
            received_at=now,
        )
        for _ in range(1200)
    )
    ids = [event.pk for event in events]

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        django_assert_max_num_queries(15),
    ):
        assert events_replay(event_ids=ids, source=Replay.Source.COMMAND) == 1200

    assert len(callbacks) == 3  # one nudge per chunk of 500
    # One drain of the account carries them all.
    assert enqueued_accounts(enqueued) == [booked_flow.account_id]
    assert Replay.objects.count() == 1200
    assert set(InboundEvent.objects.values_list("status", "attempts", "attempts_at_replay")) == {
        (EventStatus.QUEUED, 5, 5)
    }


# --- choosing the events --------------------------------------------------------------


def at_moscow(*args) -> datetime:
    return datetime(*args, tzinfo=MOSCOW)


def test_events_match_by_status(booked_flow):
    failed = booking_event(booked_flow, status=EventStatus.FAILED)
    skipped = booking_event(booked_flow, status=EventStatus.SKIPPED)
    booking_event(booked_flow, status=EventStatus.DELIVERED)

    matched = events_matching(status=[EventStatus.FAILED, EventStatus.SKIPPED])

    assert set(matched) == {failed, skipped}


@pytest.mark.parametrize("key", ["pk", "name", "endpoint_path"])
def test_events_match_by_flow_id_name_or_endpoint_path(booked_flow, mc_flow, key):
    booked = booking_event(booked_flow)
    InboundEventFactory(flow=mc_flow)

    matched = events_matching(flow=str(getattr(booked_flow, key)))

    assert list(matched) == [booked]


def test_unknown_flow_is_a_filter_error(db):
    with pytest.raises(FilterError, match="No flow with the id, name or endpoint path 'nope'"):
        events_matching(flow="nope")


def test_flow_id_wins_over_a_flow_named_like_it(db):
    first = FlowFactory()
    FlowFactory(name=str(first.pk))
    event = InboundEventFactory(flow=first)

    assert list(events_matching(flow=str(first.pk))) == [event]


def test_a_date_means_the_whole_day_in_moscow_time(booked_flow):
    booking_event(booked_flow, received_at=at_moscow(2026, 5, 1, 23, 59))
    first = booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 0, 0))
    last = booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 23, 59, 59))
    booking_event(booked_flow, received_at=at_moscow(2026, 5, 3, 0, 0))

    matched = events_matching(since=date(2026, 5, 2), until=date(2026, 5, 2))

    assert list(matched) == [first, last]


def test_moments_bound_the_range_inclusively(booked_flow):
    booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 9, 59))
    first = booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 10, 0))
    last = booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 12, 0))
    booking_event(booked_flow, received_at=at_moscow(2026, 5, 2, 12, 1))

    matched = events_matching(since=at_moscow(2026, 5, 2, 10, 0), until=datetime(2026, 5, 2, 12, 0))

    assert list(matched) == [first, last]


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (date(2026, 5, 3), date(2026, 5, 2)),
        (at_moscow(2026, 5, 3, 0, 0), date(2026, 5, 2)),
        (at_moscow(2026, 5, 2, 12, 1), at_moscow(2026, 5, 2, 12, 0)),
    ],
)
def test_a_range_ending_before_it_starts_is_a_filter_error(db, since, until):
    with pytest.raises(FilterError, match="The start of the range is after its end"):
        events_matching(since=since, until=until)


def test_events_match_by_lead_and_rdesk_id(booked_flow):
    wanted = booking_event(booked_flow, lead_id="61361", rdesk_id="77777")
    booking_event(booked_flow, lead_id="61361", rdesk_id="77778")
    booking_event(booked_flow, lead_id="99999", rdesk_id="77777")

    assert list(events_matching(lead_id=61361, rdesk_id="77777")) == [wanted]


def test_unknown_status_is_a_filter_error(db):
    with pytest.raises(FilterError, match="Unknown status: lost"):
        events_matching(status=["failed", "lost"])
