"""Re-validating rejected bodies: those that pass now become deliveries, the rest stay."""

import dataclasses
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers

from integrations.rdesk.schemas import BookingSerializer
from integrations.sync.intake_auth import flow_token_issue
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import EventStatus, Flow, InboundEvent
from integrations.sync.revalidation import events_revalidate
from tests.conftest import fixture_bytes
from tests.factories import InboundEventFactory

UNKNOWN_STATUS = "rdesk/intake/booked-unknown-status.json"
INVALID_REASON = (
    "1 of 2 items is not valid; nothing was accepted. Each item's errors are listed by field."
    "\nItem 0: status: Not a valid status; expected one of: booked, checkin, checkout, "
    "cancel, waiting."
)


class BookingWithAnyStatus(BookingSerializer):
    """The booking schema after an upgrade that accepts any status."""

    status = serializers.CharField()


@pytest.fixture
def schema_upgraded(monkeypatch):
    spec = dataclasses.replace(FLOW_KINDS["booked"], schema=BookingWithAnyStatus)
    monkeypatch.setitem(FLOW_KINDS, "booked", spec)


def rejected(client, body: bytes, path: str = "/zdrav/booked") -> InboundEvent:
    response = client.post(path, body, content_type="application/json")
    assert response.status_code in (413, 422)
    return InboundEvent.objects.get(status=EventStatus.REJECTED)


def everything() -> InboundEvent:
    return InboundEvent.objects.all()


def rejected_event(**fields) -> InboundEvent:
    """A booking body refused for its unknown status (which the upgraded schema accepts)."""
    fields = {
        "flow": Flow.objects.get(kind="booked"),
        "raw_body": fixture_bytes(UNKNOWN_STATUS),
        "status": EventStatus.REJECTED,
        "last_error": INVALID_REASON,
        **fields,
    }
    return InboundEventFactory(**fields)


def test_a_body_that_passes_now_becomes_one_received_event_per_item(client, db, schema_upgraded):
    body = fixture_bytes(UNKNOWN_STATUS)
    event = InboundEvent.objects.create(
        flow=Flow.objects.get(kind="booked"),
        raw_body=body,
        body_hash="hash",
        headers={"Content-Type": "application/json"},
        remote_addr="203.0.113.5",
        received_at=timezone.now() - timedelta(days=2),
        payload=json.loads(body),
        status=EventStatus.REJECTED,
        last_error=INVALID_REASON,
    )

    outcome = events_revalidate(events=everything())

    created = list(InboundEvent.objects.exclude(pk=event.pk).order_by("item_index"))
    assert outcome.accepted == {event.pk: [e.pk for e in created]}
    assert [e.payload for e in created] == json.loads(body)
    assert [(e.rdesk_id, e.lead_id) for e in created] == [("1004", "502"), ("1005", "503")]
    for new in created:
        assert new.status == EventStatus.RECEIVED
        assert new.next_attempt_at is not None
        assert new.replayed_at is not None
        assert new.received_at == event.received_at  # RDESK's time keeps per-lead order
        assert bytes(new.raw_body) == body
        assert new.remote_addr == "203.0.113.5"


def test_the_rejected_event_stays_as_the_record_naming_the_new_events(
    client, db, settings, schema_upgraded
):
    settings.HUB_MAX_ITEMS_PER_REQUEST = 1
    event = rejected(client, fixture_bytes("rdesk/intake/booked-batch.json"))
    settings.HUB_MAX_ITEMS_PER_REQUEST = 500

    outcome = events_revalidate(events=everything())

    event.refresh_from_db()
    ids = outcome.accepted[event.pk]
    assert event.status == EventStatus.REJECTED
    assert event.last_error.startswith("The body holds 2 items; the limit is 1 per request.")
    assert f"\nRe-validated into events #{ids[0]}, #{ids[1]} on " in event.last_error


def test_an_invalid_body_is_judged_by_the_current_schema(client, db, monkeypatch):
    event = rejected(client, fixture_bytes(UNKNOWN_STATUS))
    assert events_revalidate(events=everything()).still_invalid == [event.pk]

    monkeypatch.setitem(
        FLOW_KINDS, "booked", dataclasses.replace(FLOW_KINDS["booked"], schema=BookingWithAnyStatus)
    )
    outcome = events_revalidate(events=everything())

    assert list(outcome.accepted) == [event.pk]
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2


def test_a_body_still_invalid_stays_rejected_and_unchanged(client, db):
    event = rejected(client, fixture_bytes(UNKNOWN_STATUS))
    reason = event.last_error

    outcome = events_revalidate(events=everything())

    assert outcome.still_invalid == [event.pk]
    assert list(InboundEvent.objects.values_list("pk", "status", "last_error")) == [
        (event.pk, EventStatus.REJECTED, reason)
    ]


def test_running_it_twice_creates_nothing_new(client, db, schema_upgraded):
    event = rejected_event()
    events_revalidate(events=everything())
    count = InboundEvent.objects.count()

    again = events_revalidate(events=everything())

    assert (again.accepted, again.still_invalid) == ({}, [])
    assert InboundEvent.objects.count() == count == 3
    assert InboundEvent.objects.get(pk=event.pk).last_error.count("Re-validated") == 1


@pytest.mark.parametrize(
    "reason",
    [
        "A valid token is required.",  # refused for its credentials: final whatever it holds
        "Body is not valid JSON: Expecting value: line 1 column 1 (char 0).",
        "Content-Type must be application/json, got 'text/plain'.",
    ],
)
def test_bodies_refused_for_other_reasons_stay_rejected(db, schema_upgraded, reason):
    rejected_event(raw_body=fixture_bytes("rdesk/intake/booked-batch.json"), last_error=reason)

    outcome = events_revalidate(events=everything())

    assert (outcome.accepted, outcome.still_invalid) == ({}, [])
    assert InboundEvent.objects.count() == 1


def test_a_failed_event_with_a_similar_reason_is_not_touched(db, schema_upgraded):
    rejected_event(status=EventStatus.FAILED)

    assert events_revalidate(events=everything()).accepted == {}


def test_the_new_events_are_enqueued_when_committed(
    client, db, schema_upgraded, enqueued, django_capture_on_commit_callbacks
):
    rejected_event(last_error="2 of 2 items are not valid; nothing was accepted.")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        events_revalidate(events=everything())
    assert enqueued.call_count == 0
    for callback in callbacks:
        callback()

    flow = Flow.objects.get(kind="booked")
    assert [call.args[0] for call in enqueued.call_args_list] == [(flow.account_id,)]


def test_a_dry_run_changes_nothing(db, schema_upgraded):
    event = rejected_event()

    outcome = events_revalidate(events=everything(), dry_run=True)

    assert list(outcome.accepted) == [event.pk]
    assert list(InboundEvent.objects.values_list("pk", "last_error")) == [
        (event.pk, INVALID_REASON)
    ]


# --- the command --------------------------------------------------------------------------


def test_the_command_filters_by_flow_and_time_and_reports(db, schema_upgraded, capsys):
    booked = rejected_event()
    rejected_event(received_at=timezone.now() - timedelta(days=10))
    rejected_event(flow=Flow.objects.get(kind="mc"))
    since = (timezone.localdate() - timedelta(days=1)).isoformat()

    call_command("revalidate_events", "--flow", "/zdrav/booked", "--since", since)

    out = capsys.readouterr().out
    assert "1 rejected event can be judged again." in out
    assert f"#{booked.pk} -> #" in out
    assert "1 passed: 2 new events queued for delivery." in out
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2


def test_the_commands_dry_run_changes_nothing(db, schema_upgraded, capsys):
    rejected_event()

    call_command("revalidate_events", "--dry-run")

    out = capsys.readouterr().out
    assert "Dry run: 1 would pass and be queued for delivery; nothing was changed." in out
    assert InboundEvent.objects.count() == 1


# --- the admin action ------------------------------------------------------------------


def action(client, event_ids):
    return client.post(
        reverse("admin:sync_inboundevent_changelist"),
        {"action": "revalidate", "_selected_action": event_ids},
        follow=True,
    )


def test_an_operator_re_validates_the_selected_events(operator_client, schema_upgraded):
    event = rejected_event()

    response = action(operator_client, [event.pk])

    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["1 rejected event now passes validation: 2 new events queued for delivery."]
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2


def test_an_auditor_is_refused_the_action_by_the_server(auditor_client, schema_upgraded):
    event = rejected_event()

    response = action(auditor_client, [event.pk])

    assert response.status_code == 403
    assert list(InboundEvent.objects.values_list("pk", "last_error")) == [
        (event.pk, INVALID_REASON)
    ]


def test_a_body_refused_for_a_missing_token_stays_rejected(client, db, schema_upgraded):
    flow = Flow.objects.get(kind="booked")
    flow_token_issue(flow=flow)
    response = client.post(
        "/zdrav/booked", fixture_bytes(UNKNOWN_STATUS), content_type="application/json"
    )
    assert response.status_code == 401

    outcome = events_revalidate(events=everything())

    assert (outcome.accepted, outcome.still_invalid) == ({}, [])
    assert InboundEvent.objects.get().status == EventStatus.REJECTED


def test_a_pruned_event_is_never_turned_into_deliveries(db, schema_upgraded):
    # Its body holds *** where the guest's data was: sent, it would blank the lead.
    rejected_event(pruned_at=timezone.now())

    result = events_revalidate(events=everything())

    assert result.accepted == {}
    assert not InboundEvent.objects.exclude(status=EventStatus.REJECTED).exists()
