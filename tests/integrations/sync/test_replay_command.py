"""replay_events: the admin's replay filters from the shell, with progress and a summary."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from integrations.sync.delivery import event_deliver
from integrations.sync.management.commands import replay_events
from integrations.sync.models import EventStatus, InboundEvent, Replay
from tests.factories import DeliveryAttemptFactory, InboundEventFactory
from tests.integrations.sync.test_delivery import LEAD_ANSWER, LEAD_URL, booking_event

MOSCOW = ZoneInfo("Europe/Moscow")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch):
    """Runs as from cron unless a test says otherwise: stdin is not a terminal."""
    monkeypatch.setattr("sys.stdin", io.StringIO())


def replay(*args, stderr=None) -> tuple[str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("replay_events", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def replayed_ids() -> set[int]:
    return set(Replay.objects.values_list("event", flat=True))


# --- which events ---------------------------------------------------------------------


def test_failed_events_are_replayed_by_default(booked_flow, enqueued):
    failed = booking_event(booked_flow, status=EventStatus.FAILED)
    for status in (EventStatus.SKIPPED, EventStatus.DELIVERED, EventStatus.REJECTED):
        booking_event(booked_flow, status=status)

    replay()

    assert replayed_ids() == {failed.pk}


def test_status_can_be_given_several_times(booked_flow, enqueued):
    skipped = booking_event(booked_flow, status=EventStatus.SKIPPED)
    delivered = booking_event(booked_flow, status=EventStatus.DELIVERED)
    booking_event(booked_flow, status=EventStatus.FAILED)

    replay("--status", "skipped", "--status", "delivered")

    assert replayed_ids() == {skipped.pk, delivered.pk}


@pytest.mark.parametrize("key", ["pk", "name", "endpoint_path"])
def test_flow_is_picked_by_id_name_or_endpoint_path(booked_flow, mc_flow, enqueued, key):
    booked = booking_event(booked_flow, status=EventStatus.FAILED)
    InboundEventFactory(flow=mc_flow, status=EventStatus.FAILED)

    replay("--flow", str(getattr(booked_flow, key)))

    assert replayed_ids() == {booked.pk}


def test_date_range_is_read_in_moscow_time(booked_flow, enqueued):
    def received(*moment):
        when = datetime(*moment, tzinfo=MOSCOW)
        return booking_event(booked_flow, status=EventStatus.FAILED, received_at=when)

    received(2026, 5, 1, 23, 59)
    first, last = received(2026, 5, 2, 0, 0), received(2026, 5, 3, 23, 59)
    received(2026, 5, 4, 0, 0)

    replay("--since", "2026-05-02", "--until", "2026-05-03")

    assert replayed_ids() == {first.pk, last.pk}


def test_range_can_be_bounded_by_times(booked_flow, enqueued):
    def received(*moment):
        when = datetime(*moment, tzinfo=MOSCOW)
        return booking_event(booked_flow, status=EventStatus.FAILED, received_at=when)

    received(2026, 5, 2, 9, 59)
    inside = received(2026, 5, 2, 10, 30)
    received(2026, 5, 2, 11, 1)

    replay("--since", "2026-05-02 10:00", "--until", "2026-05-02T11:00")

    assert replayed_ids() == {inside.pk}


def test_lead_id_picks_that_leads_events(booked_flow, enqueued):
    wanted = booking_event(booked_flow, status=EventStatus.FAILED, lead_id="61361")
    booking_event(booked_flow, status=EventStatus.FAILED, lead_id="61362")

    replay("--lead-id", "61361")

    assert replayed_ids() == {wanted.pk}


def test_rdesk_id_picks_that_bills_events(booked_flow, enqueued):
    wanted = booking_event(booked_flow, status=EventStatus.FAILED, rdesk_id="77777")
    booking_event(booked_flow, status=EventStatus.FAILED, rdesk_id="77778")

    replay("--rdesk-id", "77777")

    assert replayed_ids() == {wanted.pk}


# --- what it does ---------------------------------------------------------------------


def test_replays_are_recorded_as_the_commands_with_the_given_user(booked_flow, operator, enqueued):
    booking_event(booked_flow, status=EventStatus.FAILED, attempts=4)

    replay("--user", "operator")

    record = Replay.objects.get()
    assert (record.source, record.requested_by) == (Replay.Source.COMMAND, operator)
    assert (record.previous_status, record.attempts_before) == (EventStatus.FAILED, 4)


def test_replays_without_a_user_record_no_one(booked_flow, enqueued):
    booking_event(booked_flow, status=EventStatus.FAILED)

    replay()

    assert Replay.objects.get().requested_by is None


def test_replayed_events_get_new_attempts_after_the_old_ones(booked_flow, amocrm_http, enqueued):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=1)
    earlier = DeliveryAttemptFactory(event=event, response_status=503, error_class="Unavailable")

    _, progress = replay()
    assert "Progress: 1 of 1 checked, 1 replayed." in progress

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED
    event.refresh_from_db()
    assert event.attempts == 2
    assert list(event.delivery_attempts.order_by("pk").values_list("pk", "response_status")) == [
        (earlier.pk, 503),
        (event.delivery_attempts.latest("pk").pk, 200),
    ]


def test_summary_counts_what_was_replayed_and_what_was_left_alone(booked_flow, enqueued):
    for status in [EventStatus.FAILED] * 3 + [EventStatus.QUEUED, EventStatus.REJECTED]:
        booking_event(booked_flow, status=status)

    output, _ = replay("--status", "failed", "--status", "queued", "--status", "rejected")

    assert output.splitlines() == [
        "Matched: 5 event(s).",
        "  queued: 1",
        "  failed: 3",
        "  rejected: 1",
        "Replayed: 3.",
        "Left alone (pending, already on their way): 1.",
        "Not replayable (rejected, nothing to send): 1.",
    ]


def test_progress_is_reported_chunk_by_chunk_off_a_terminal(booked_flow, enqueued, monkeypatch):
    monkeypatch.setattr(replay_events, "CHUNK_SIZE", 2)
    for _ in range(5):
        booking_event(booked_flow, status=EventStatus.FAILED)

    _, progress = replay()

    assert progress.splitlines() == [
        "Progress: 2 of 5 checked, 2 replayed.",
        "Progress: 4 of 5 checked, 4 replayed.",
        "Progress: 5 of 5 checked, 5 replayed.",
    ]


def test_progress_bar_is_drawn_on_a_terminal(booked_flow, enqueued):
    for _ in range(3):
        booking_event(booked_flow, status=EventStatus.FAILED)

    _, progress = replay(stderr=Terminal())

    assert "Replaying: 100%" in progress
    assert "3/3" in progress
    assert "Progress:" not in progress


def test_dry_run_counts_and_changes_nothing(booked_flow, enqueued):
    event = booking_event(booked_flow, status=EventStatus.FAILED, attempts=2, last_error="boom")
    before = InboundEvent.objects.values().get(pk=event.pk)

    output, _ = replay("--dry-run")

    assert "Matched: 1 event(s)." in output
    assert "Dry run: 1 event(s) would be replayed; nothing was changed." in output
    assert InboundEvent.objects.values().get(pk=event.pk) == before
    assert not Replay.objects.exists()
    assert enqueued.call_count == 0


def test_nothing_matching_replays_nothing(booked_flow, enqueued):
    booking_event(booked_flow, status=EventStatus.DELIVERED)

    output, _ = replay()

    assert output.splitlines() == ["Matched: 0 event(s).", "Replayed: 0."]
    assert enqueued.call_count == 0


# --- asking first ---------------------------------------------------------------------


@pytest.fixture
def terminal_answer(monkeypatch):
    """Stdin is a terminal; the user's answer to the prompt is set by the test."""
    monkeypatch.setattr("sys.stdin", Terminal())

    def answer(text: str):
        monkeypatch.setattr("builtins.input", lambda: text)

    return answer


def test_on_a_terminal_it_asks_and_no_cancels(booked_flow, enqueued, terminal_answer):
    booking_event(booked_flow, status=EventStatus.FAILED)
    terminal_answer("n")

    output, _ = replay()

    assert output.startswith("Replay 1 event(s)? [y/N] ")
    assert "Cancelled; nothing was replayed." in output
    assert not Replay.objects.exists()


def test_on_a_terminal_yes_replays(booked_flow, enqueued, terminal_answer):
    booking_event(booked_flow, status=EventStatus.FAILED)
    terminal_answer("y")

    output, _ = replay()

    assert "Replayed: 1." in output
    assert Replay.objects.count() == 1


def test_yes_skips_the_question(booked_flow, enqueued, terminal_answer, monkeypatch):
    booking_event(booked_flow, status=EventStatus.FAILED)

    def never(*args):
        raise AssertionError("asked despite --yes")

    monkeypatch.setattr("builtins.input", never)

    output, _ = replay("--yes")

    assert "Replayed: 1." in output


# --- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flow", "nope"], "No flow with the id, name or endpoint path 'nope'."),
        (["--since", "yesterday"], "--since: 'yesterday' is not a date or time"),
        (["--until", "2026-02-30"], "--until: '2026-02-30' is not a date or time"),
        (["--since", "2026-05-03", "--until", "2026-05-02"], "The start of the range is after"),
        (["--user", "nobody"], "No user 'nobody'."),
        (["--status", "lost"], "invalid choice: 'lost'"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(booked_flow, enqueued, args, message):
    event = booking_event(booked_flow, status=EventStatus.FAILED)

    with pytest.raises(CommandError, match=message):
        replay(*args)

    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert not Replay.objects.exists()


def test_help_describes_the_command():
    parser = replay_events.Command().create_parser("manage.py", "replay_events")

    assert "Send finished events (failed by default) to AmoCRM again." in parser.format_help()
