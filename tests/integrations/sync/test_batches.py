"""Batched delivery against the emulator: one PATCH for many leads, what each event keeps
of it, mock leads created in batches, and AmoCRM refusing part of a batch."""

import json

import pytest

from integrations.sync.delivery import account_drain
from integrations.sync.models import (
    BatchCall,
    DeliveryAttempt,
    EventStatus,
    Flow,
    FlowStatusMapping,
    InboundEvent,
    LeadAlias,
)
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

FIRST_LEAD = 41000001
BOOKINGS_PIPELINE = 10156066


@pytest.fixture
def flow(emulator_flow) -> Flow:
    return emulator_flow


def booking(flow: Flow, lead_id: int, **item) -> InboundEvent:
    payload = {**load_item("rdesk-booked.json"), "lead_id": lead_id, **item}
    return InboundEventFactory(
        flow=flow,
        payload=payload,
        rdesk_id=str(payload["id"]),
        lead_id=str(lead_id),
        status=EventStatus.QUEUED,
    )


def leads(emulator, count: int) -> list[int]:
    ids = [FIRST_LEAD + n for n in range(count)]
    for lead_id in ids:
        emulator.state.add_lead(id=lead_id)
    return ids


def patches(emulator) -> list[dict]:
    return [r for r in emulator.state.requests if r["method"] == "PATCH"]


def statuses(events) -> list[str]:
    return [InboundEvent.objects.get(pk=e.pk).status for e in events]


def test_due_events_of_several_leads_go_out_in_one_batch_patch(flow, emulator):
    events = [booking(flow, lead_id) for lead_id in leads(emulator, 3)]

    account_drain(account_id=flow.account_id)

    (patch,) = patches(emulator)
    assert patch["path"] == "/api/v4/leads"
    assert [item["id"] for item in patch["body"]] == [FIRST_LEAD, FIRST_LEAD + 1, FIRST_LEAD + 2]
    assert [item["request_id"] for item in patch["body"]] == [str(e.pk) for e in events]
    assert statuses(events) == [EventStatus.DELIVERED] * 3
    for lead_id in (FIRST_LEAD, FIRST_LEAD + 2):
        assert emulator.state.lead(lead_id)["price"] == 153887


def test_each_event_keeps_its_own_item_and_answer_and_the_batch_call_its_whole_answer(
    flow, emulator
):
    events = [booking(flow, lead_id) for lead_id in leads(emulator, 2)]

    account_drain(account_id=flow.account_id)

    batch = BatchCall.objects.get()
    assert (batch.request_method, batch.response_status, batch.item_count) == ("PATCH", 200, 2)
    assert batch.request_body is None
    assert len(json.loads(batch.response_body)["_embedded"]["leads"]) == 2
    for event in events:
        (attempt,) = DeliveryAttempt.objects.filter(event=event)
        assert attempt.batch_call == batch
        assert attempt.request_body["id"] == int(event.lead_id)
        assert attempt.request_body["request_id"] == str(event.pk)
        assert attempt.request_body["price"] == 153887
        assert json.loads(attempt.response_body)["id"] == int(event.lead_id)
        assert attempt.duration_ms == batch.duration_ms


def test_batches_hold_at_most_the_configured_number_of_leads(flow, emulator, settings):
    settings.HUB_BATCH_SIZE = 2
    events = [booking(flow, lead_id) for lead_id in leads(emulator, 5)]

    account_drain(account_id=flow.account_id)

    sizes = [len(p["body"]) if isinstance(p["body"], list) else 1 for p in patches(emulator)]
    assert sizes == [2, 2, 1]
    assert statuses(events) == [EventStatus.DELIVERED] * 5


def test_lone_event_goes_out_alone_as_a_single_lead_patch(flow, emulator):
    (lead_id,) = leads(emulator, 1)
    event = booking(flow, lead_id)

    account_drain(account_id=flow.account_id)

    (patch,) = patches(emulator)
    assert patch["path"] == f"/api/v4/leads/{lead_id}"
    attempt = DeliveryAttempt.objects.get(event=event)
    assert attempt.batch_call is None
    assert attempt.request_url.endswith(f"/api/v4/leads/{lead_id}")


def test_mock_leads_missing_in_amocrm_are_created_in_one_batch(flow, emulator):
    flow.mock_lead_id = True
    flow.save()
    events = [booking(flow, rdesk_lead_id) for rdesk_lead_id in (901, 902, 903)]

    account_drain(account_id=flow.account_id)

    posts = [r for r in emulator.state.requests if r["method"] == "POST"]
    assert [[item["name"] for item in post["body"]] for post in posts] == [
        ["ID_901", "ID_902", "ID_903"]
    ]
    assert emulator.state.counters["leads_created"] == 3
    (patch,) = patches(emulator)
    aliases = dict(LeadAlias.objects.values_list("rdesk_lead_id", "amocrm_lead_id"))
    assert [item["id"] for item in patch["body"]] == [aliases[901], aliases[902], aliases[903]]
    assert statuses(events) == [EventStatus.DELIVERED] * 3
    creation = DeliveryAttempt.objects.get(event=events[1], request_method="POST")
    assert creation.request_body["name"] == "ID_902"
    assert json.loads(creation.response_body)["id"] == aliases[902]


# --- AmoCRM refusing part of a batch ----------------------------------------------------


def test_one_invalid_lead_fails_alone_with_amocrms_detail_and_the_rest_are_delivered(
    flow, emulator
):
    FlowStatusMapping.objects.create(
        flow=flow, booking_status="checkin", pipeline_id=BOOKINGS_PIPELINE, status_id=999999
    )
    ids = leads(emulator, 4)
    events = [booking(flow, lead_id) for lead_id in ids]
    bad = booking(flow, FIRST_LEAD + 10, status="checkin")
    emulator.state.add_lead(id=FIRST_LEAD + 10)

    account_drain(account_id=flow.account_id)

    assert statuses(events) == [EventStatus.DELIVERED] * 4
    bad.refresh_from_db()
    assert bad.status == EventStatus.FAILED
    assert bad.last_error == (
        "AmoCRM refused the update: Bad Request: Request validation failed; "
        "status_id: The value you selected is not a valid choice. (NotSupportedChoice)"
    )
    assert [p["status"] for p in patches(emulator)] == [400, 200]
    assert len(patches(emulator)[1]["body"]) == 4
    refused = DeliveryAttempt.objects.get(event=bad)
    assert refused.error_class == "ValidationFailed"
    assert json.loads(refused.response_body)["request_id"] == str(bad.pk)
    bystander = DeliveryAttempt.objects.filter(event=events[0]).order_by("id")
    assert [a.response_status for a in bystander] == [400, 200]
    assert bystander[0].error_class == "RefusedWithBatch"


def test_lead_deleted_in_amocrm_fails_only_its_own_event(flow, emulator):
    ids = leads(emulator, 3)
    events = [booking(flow, lead_id) for lead_id in ids]
    emulator.state.delete_lead(ids[1])

    account_drain(account_id=flow.account_id)

    assert statuses(events) == [EventStatus.DELIVERED, EventStatus.FAILED, EventStatus.DELIVERED]
    gone = InboundEvent.objects.get(pk=events[1].pk)
    assert gone.last_error == (
        f"Lead {ids[1]} not found in AmoCRM: Not Found: Lead {ids[1]} not found"
    )
    assert [(p["method"], p["status"]) for p in emulator.state.requests] == [
        ("PATCH", 404),
        ("GET", 200),
        ("PATCH", 200),
    ]


@pytest.mark.parametrize("status", [504, 413])
def test_too_heavy_batch_is_halved_until_it_goes_through(flow, emulator, status):
    emulator.state.fault_set(status=status, over=2)
    events = [booking(flow, lead_id) for lead_id in leads(emulator, 5)]

    account_drain(account_id=flow.account_id)

    assert statuses(events) == [EventStatus.DELIVERED] * 5
    sizes = [
        (len(p["body"]) if isinstance(p["body"], list) else 1, p["status"])
        for p in patches(emulator)
    ]
    assert sizes == [(5, status), (2, 200), (3, status), (1, 200), (2, 200)]


def test_single_lead_timing_out_is_retried_later(flow, emulator):
    emulator.state.fault_set(status=504, over=0)
    (lead_id,) = leads(emulator, 1)
    event = booking(flow, lead_id)

    account_drain(account_id=flow.account_id)

    event.refresh_from_db()
    assert event.status == EventStatus.QUEUED
    assert event.last_error == "Unavailable: Gateway Timeout: Gateway Timeout"
    assert event.next_attempt_at is not None
    assert event.claim_token is None
