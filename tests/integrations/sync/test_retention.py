"""Retention: old events lose their personal data and keep their audit trail.

The clock is frozen at ``NOW``; events are made as old as each test needs. The default
policy applies: delivered and skipped events 90 days, failed and rejected ones 180 days.
"""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

from hub.celery import app
from integrations.sync.models import BatchCall, EventStatus, InboundEvent
from integrations.sync.replay import events_replay
from integrations.sync.retention import events_prune
from integrations.sync.tasks import prune_events
from tests.conftest import fixture_bytes
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item
from tests.integrations.sync.test_admin_events import recorded_event
from tests.integrations.sync.test_masking import leaked_in

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADERS = {"Content-Type": "application/json", "User-Agent": "RDESK/2.1", "X-Guest": "Фамилия1"}


@pytest.fixture(autouse=True)
def frozen_now():
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        yield NOW


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def old_event(flow, *, days: float, status=EventStatus.DELIVERED, fixture="rdesk-booked.json"):
    """A recorded sample with a failed attempt, received ``days`` ago."""
    event = recorded_event(
        flow, fixture, status=status, headers=HEADERS, received_at=days_ago(days)
    )
    event.delivery_attempts.update(started_at=days_ago(days) + timedelta(seconds=1))
    return event


def everything_stored(event: InboundEvent) -> str:
    """Every column of the event and its attempts, as the database holds them."""
    event.refresh_from_db()
    attempts = list(event.delivery_attempts.values())
    return "\n".join(
        [
            event.raw_text,
            json.dumps(event.payload, ensure_ascii=False),
            json.dumps(event.headers, ensure_ascii=False),
            event.last_error,
            json.dumps(attempts, ensure_ascii=False, default=str),
        ]
    )


def key_paths(value, prefix="") -> set[str]:
    """The shape of a JSON value: the path of every key and list position."""
    if isinstance(value, dict):
        return {
            p for k, v in value.items() for p in {f"{prefix}.{k}"} | key_paths(v, f"{prefix}.{k}")
        }
    if isinstance(value, list):
        return {p for i, v in enumerate(value) for p in key_paths(v, f"{prefix}[{i}]")}
    return set()


# --- what is masked, what is kept --------------------------------------------------------


@pytest.mark.parametrize(
    ("flow_fixture", "fixture"),
    [("booked_flow", "rdesk-booked.json"), ("mc_flow", "rdesk-mc.json")],
)
def test_an_old_delivered_event_keeps_no_personal_value_anywhere(
    db, request, flow_fixture, fixture
):
    flow = request.getfixturevalue(flow_fixture)
    event = old_event(flow, days=91, fixture=fixture)
    payload = event.payload
    assert leaked_in(everything_stored(event), payload)  # the sample is full of them

    assert events_prune() == {EventStatus.DELIVERED: 1}

    assert leaked_in(everything_stored(event), payload) == set()


def test_an_old_event_keeps_its_ids_amounts_dates_and_audit_metadata(booked_flow):
    event = old_event(booked_flow, days=91)
    before = InboundEvent.objects.values().get(pk=event.pk)
    attempt_before = event.delivery_attempts.values().get()

    events_prune()

    event.refresh_from_db()
    assert event.pruned_at == NOW
    assert event.payload["id"] == 88888
    assert event.payload["lead_id"] == "23392663"
    assert event.payload["money"] == {"total": 153887, "paid": 61361}
    assert (event.payload["checkin"], event.payload["checkout"]) == ("2026-08-25", "2026-09-05")
    assert event.payload["billData"] == before["payload"]["billData"]
    assert event.payload["status"] == "waiting"
    assert event.payload["extData"]["guests"][0]["roomCategory"] == "Стандарт без балкона"
    assert event.payload["name"] == event.payload["extData"]["guests"][0]["fio"] == "***"
    kept = ["status", "attempts", "received_at", "delivered_at", "rdesk_id", "lead_id"]
    assert {k: getattr(event, k) for k in kept} == {k: before[k] for k in kept}
    assert event.body_hash == before["body_hash"]
    attempt = event.delivery_attempts.values().get()
    kept = ["response_status", "error_class", "request_method", "request_url", "started_at"]
    assert {k: attempt[k] for k in kept} == {k: attempt_before[k] for k in kept}
    assert attempt["request_body"][0]["id"] == 23392663
    assert attempt["request_body"][0]["price"] == 153887


def test_the_summary_is_json_of_the_same_shape(booked_flow):
    event = old_event(booked_flow, days=91)
    shape = key_paths(json.loads(event.raw_text))
    attempt_shape = key_paths(event.delivery_attempts.get().request_body)

    events_prune()

    event.refresh_from_db()
    assert key_paths(json.loads(event.raw_text)) == shape
    assert key_paths(event.payload) == key_paths(json.loads(event.raw_text)[0])
    assert key_paths(event.delivery_attempts.get().request_body) == attempt_shape
    assert json.loads(event.delivery_attempts.get().response_body)["title"] == "Bad Request"
    assert event.headers == {
        "Content-Type": "application/json",
        "User-Agent": "***",
        "X-Guest": "***",
    }


def test_the_raw_body_loses_the_personal_values_of_every_item_posted_with_it(booked_flow):
    booking, other = load_item("rdesk-booked.json"), load_item("rdesk-booked-rich.json")
    event = old_event(booked_flow, days=91)
    posted = json.dumps([booking, other], ensure_ascii=False).encode()
    InboundEvent.objects.filter(pk=event.pk).update(raw_body=posted)
    assert leaked_in(posted.decode(), other)

    events_prune()

    event.refresh_from_db()
    assert leaked_in(event.raw_text, other) == set()
    assert json.loads(event.raw_text)[1]["id"] == other["id"]


def test_a_body_that_is_not_json_is_dropped(booked_flow):
    event = old_event(booked_flow, days=181, status=EventStatus.REJECTED)
    InboundEvent.objects.filter(pk=event.pk).update(
        raw_body="Фамилия1 Имя1 {".encode(), payload=None
    )

    events_prune()

    event.refresh_from_db()
    assert bytes(event.raw_body) == b""
    assert event.pruned_at == NOW


def test_a_rejected_body_with_personal_values_in_wrong_places_keeps_none(booked_flow):
    body = fixture_bytes("rdesk/personal/booked-invalid.json")
    item = json.loads(body)[0]
    event = InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.REJECTED,
        received_at=days_ago(181),
        raw_body=body,
        payload=item,
        rdesk_id=str(item["id"]),
        lead_id=item["lead_id"],
        last_error='extData.guests.0.birthday: Date has wrong format: "12.04.1961"',
    )

    events_prune()

    stored = everything_stored(event)
    for value in ["Белозёров", "79167770431", "angelina", "12.04.1961", "щитовидной"]:
        assert value not in stored
    assert event.lead_id == "***"
    assert event.rdesk_id == "615002"
    assert event.payload["money"] == {"total": "много", "paid": -1}
    assert event.last_error == 'extData.guests.0.birthday: Date has wrong format: "***"'


def test_a_batch_calls_whole_answer_loses_the_values_of_the_events_it_carried(booked_flow):
    event = old_event(booked_flow, days=91)
    batch = BatchCall.objects.create(
        account=booked_flow.account,
        request_method="PATCH",
        request_url="https://clinic.amocrm.ru/api/v4/leads",
        response_status=400,
        response_body=json.dumps({"detail": "Фамилия1 Имя1 Отчество1 / 79123123123"}),
        item_count=2,
    )
    event.delivery_attempts.update(batch_call=batch)

    events_prune()

    batch.refresh_from_db()
    assert json.loads(batch.response_body) == {"detail": "*** / ***"}
    assert batch.response_status == 400


# --- who is pruned, and when -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "days", "pruned"),
    [
        (EventStatus.DELIVERED, 89, False),
        (EventStatus.DELIVERED, 91, True),
        (EventStatus.SKIPPED, 91, True),
        (EventStatus.FAILED, 91, False),
        (EventStatus.FAILED, 179, False),
        (EventStatus.FAILED, 181, True),
        (EventStatus.REJECTED, 91, False),
        (EventStatus.REJECTED, 181, True),
    ],
)
def test_failed_and_rejected_events_are_kept_longer(booked_flow, status, days, pruned):
    event = old_event(booked_flow, days=days, status=status)

    events_prune()

    event.refresh_from_db()
    assert (event.pruned_at is not None) is pruned


@pytest.mark.parametrize("status", [EventStatus.RECEIVED, EventStatus.QUEUED])
def test_pending_events_are_never_touched_however_old(booked_flow, status):
    event = old_event(booked_flow, days=1000, status=status)
    stored = everything_stored(event)

    assert events_prune() == {}

    assert everything_stored(event) == stored
    assert event.pruned_at is None


def test_the_days_come_from_the_settings(booked_flow, settings):
    settings.HUB_RETENTION_DELIVERED_DAYS = 7
    event = old_event(booked_flow, days=8)

    events_prune()

    event.refresh_from_db()
    assert event.pruned_at == NOW


def test_an_event_sent_again_recently_is_not_due(booked_flow):
    event = old_event(booked_flow, days=200)
    InboundEvent.objects.filter(pk=event.pk).update(replayed_at=days_ago(10))

    assert events_prune() == {}


def test_a_pruned_event_is_not_pruned_again_nor_sent_again(booked_flow):
    event = old_event(booked_flow, days=91)
    events_prune()

    assert events_prune() == {}
    assert events_replay(event_ids=[event.pk], source="command") == 0
    event.refresh_from_db()
    assert event.status == EventStatus.DELIVERED


def test_many_events_are_pruned_in_batches(booked_flow):
    events = [old_event(booked_flow, days=91) for _ in range(5)]

    assert events_prune(batch_size=2) == {EventStatus.DELIVERED: 5}

    assert InboundEvent.objects.filter(pk__in=[e.pk for e in events], pruned_at=NOW).count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_event_a_worker_holds_is_passed_over_without_waiting(booked_flow):
    held, free = old_event(booked_flow, days=91), old_event(booked_flow, days=91)
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                InboundEvent.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(10)
    started = time.monotonic()
    try:
        pruned = events_prune()
    finally:
        release.set()
        holder.join()

    assert time.monotonic() - started < 2
    assert pruned == {EventStatus.DELIVERED: 1}
    assert InboundEvent.objects.get(pk=free.pk).pruned_at == NOW
    assert InboundEvent.objects.get(pk=held.pk).pruned_at is None
    assert events_prune() == {EventStatus.DELIVERED: 1}  # the next run takes it


# --- the command and beat ----------------------------------------------------------------


def test_dry_run_shows_the_cut_offs_and_counts_and_changes_nothing(booked_flow):
    delivered = old_event(booked_flow, days=91)
    old_event(booked_flow, days=181, status=EventStatus.FAILED)
    old_event(booked_flow, days=100, status=EventStatus.FAILED)  # not yet
    stored = everything_stored(delivered)
    out = StringIO()

    call_command("prune_events", "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "Delivered and skipped: kept 90 days; received before 2026-09-02 12:00 MSK is due.",
        "Failed and rejected: kept 180 days; received before 2026-06-04 12:00 MSK is due.",
        "Delivered: 1 would be pruned.",
        "Skipped: 0 would be pruned.",
        "Failed: 1 would be pruned.",
        "Rejected: 0 would be pruned.",
        "Dry run: nothing was changed.",
    ]
    assert everything_stored(delivered) == stored
    assert not InboundEvent.objects.filter(pruned_at__isnull=False).exists()


def test_the_command_prunes_and_says_how_many(booked_flow):
    old_event(booked_flow, days=91)
    old_event(booked_flow, days=91, status=EventStatus.SKIPPED)
    out = StringIO()

    call_command("prune_events", stdout=out)

    assert out.getvalue().splitlines()[2:] == [
        "Delivered: 1 pruned.",
        "Skipped: 1 pruned.",
        "Failed: 0 pruned.",
        "Rejected: 0 pruned.",
    ]
    assert InboundEvent.objects.filter(pruned_at=NOW).count() == 2


def test_beat_runs_the_prune_task_daily(settings, booked_flow):
    entry = settings.CELERY_BEAT_SCHEDULE["prune-events"]

    assert entry == {"task": "integrations.sync.tasks.prune_events", "schedule": 86400.0}
    app.loader.import_default_modules()
    assert "integrations.sync.tasks.prune_events" in app.tasks
    old_event(booked_flow, days=91)
    assert prune_events() == {EventStatus.DELIVERED: 1}


def test_beat_database_scheduler_installs_the_prune_task(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    # Beat closes stale connections between ticks; here that would end the test's transaction.
    with mock.patch("django_celery_beat.schedulers.close_old_connections"):
        DatabaseScheduler(app=app)

    task = PeriodicTask.objects.get(name="prune-events")
    assert task.task == "integrations.sync.tasks.prune_events"
    assert (task.interval.every, task.interval.period) == (86400, "seconds")


# --- the admin ---------------------------------------------------------------------------


def test_the_events_list_shows_the_policy_and_what_is_due(admin_client, booked_flow):
    old_event(booked_flow, days=91)
    old_event(booked_flow, days=92)
    events_prune()
    old_event(booked_flow, days=95)
    old_event(booked_flow, days=200, status=EventStatus.REJECTED)

    page = admin_client.get(reverse("admin:sync_inboundevent_changelist")).content.decode()

    assert "Delivered and skipped: kept 90 days; received before 09/02/2026: 1 due" in page
    assert "Failed and rejected: kept 180 days; received before 06/04/2026: 1 due" in page
    assert "2 events pruned so far" in page


def test_a_pruned_events_pages_render_and_say_when_it_was_pruned(admin_client, booked_flow):
    event = old_event(booked_flow, days=91)
    payload = event.payload
    events_prune()
    attempt = event.delivery_attempts.get()

    page = admin_client.get(reverse("admin:sync_inboundevent_change", args=[event.pk]))
    attempt_page = admin_client.get(reverse("admin:sync_deliveryattempt_change", args=[attempt.pk]))

    text = page.content.decode()
    assert page.status_code == attempt_page.status_code == 200
    assert "Pruned on Dec. 1, 2026, noon under the retention policy" in text
    assert "delivered and skipped: 90 days" in text
    assert "The event was pruned" in text
    assert leaked_in(text + attempt_page.content.decode(), payload) == set()


def test_an_event_not_pruned_says_nothing_of_it(admin_client, booked_flow):
    event = InboundEventFactory(flow=booked_flow, status=EventStatus.DELIVERED)

    page = admin_client.get(reverse("admin:sync_inboundevent_change", args=[event.pk]))

    assert "Pruned on" not in page.content.decode()


def test_a_pruned_events_page_offers_no_replay_and_refuses_one(admin_client, booked_flow):
    event = old_event(booked_flow, days=91)
    events_prune()
    page = reverse("admin:sync_inboundevent_change", args=[event.pk])

    shown = admin_client.get(page).content.decode()
    answer = admin_client.post(
        reverse("admin:sync_inboundevent_replay", args=[event.pk]), follow=True
    )

    assert reverse("admin:sync_inboundevent_replay", args=[event.pk]) not in shown
    assert reverse("admin:sync_inboundevent_preview", args=[event.pk]) not in shown
    assert "it was pruned under the retention policy" in answer.content.decode()
    event.refresh_from_db()
    assert event.status == EventStatus.DELIVERED


def test_the_replay_command_does_not_count_pruned_events(booked_flow):
    old_event(booked_flow, days=91)
    events_prune()
    out = StringIO()

    call_command("replay_events", "--status", "delivered", "--dry-run", stdout=out)

    assert "0 event(s) would be replayed" in out.getvalue()
