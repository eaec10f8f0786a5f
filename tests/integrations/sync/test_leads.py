"""Which lead an event updates: mock lead id mode, pipeline stage moves, per-lead ordering.

AmoCRM is the emulator (in this process, on a real port) unless a test needs an answer
the emulator does not give; then ``responses``.
"""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient
from integrations.amocrm.services import catalogue_refresh
from integrations.amocrm.tokens import AccountTokens
from integrations.rdesk.schemas import BOOKING_STATUSES
from integrations.sync.delivery import account_drain, event_deliver
from integrations.sync.leads import lead_target
from integrations.sync.models import (
    BookingStatus,
    EventStatus,
    Flow,
    FlowStatusMapping,
    InboundEvent,
    LeadAlias,
    Replay,
)
from integrations.sync.replay import events_replay
from tests.factories import (
    AccountFactory,
    InboundEventFactory,
    LeadAliasFactory,
    PipelineFactory,
    StatusFactory,
)
from tests.integrations.rdesk.payloads import load_item

SAMPLE_LEAD = 23392663  # the sample booking's lead, seeded in the emulator
MAIN_PIPELINE, MAIN_FIRST_STAGE = 7000000, 7000001
BOOKINGS_PIPELINE, NEW_BOOKING, CHECKED_IN = 10156066, 80453094, 80453096
MC_PIPELINE, MC_PAID = 10164486, 80512652
WON = 142


@pytest.fixture
def mock_flow(emulator_flow) -> Flow:
    emulator_flow.mock_lead_id = True
    emulator_flow.save()
    return emulator_flow


def booking_event(flow: Flow, *, lead_id: int = SAMPLE_LEAD, **fields) -> InboundEvent:
    item = {**load_item("rdesk-booked.json"), "lead_id": lead_id}
    item.update(fields.pop("item", {}))
    return InboundEventFactory(
        flow=flow,
        payload=item,
        rdesk_id=str(item["id"]),
        lead_id=str(lead_id),
        **{"status": EventStatus.QUEUED, **fields},
    )


def api_client(account) -> AmoCRMClient:
    return AmoCRMClient(account, tokens=AccountTokens(account), audit=False)


def searches(emulator) -> list[dict]:
    return [
        r
        for r in emulator.state.requests
        if r["method"] == "GET" and r["path"] == "/api/v4/leads" and "query" in r["query"]
    ]


def leads_named(emulator, name: str) -> list[dict]:
    return [lead for lead in emulator.state.leads.values() if lead["name"] == name]


def last_patch(emulator) -> dict:
    return [r for r in emulator.state.requests if r["method"] == "PATCH"][-1]


# --- direct mode ----------------------------------------------------------------------


def test_direct_mode_updates_the_lead_with_the_rdesk_lead_id_without_a_lookup(
    emulator_flow, emulator
):
    assert lead_target(flow=emulator_flow, rdesk_lead_id=555, client=None) == 555
    assert emulator.state.requests == []


# --- mock lead id mode: finding ID_N --------------------------------------------------


def test_mock_mode_finds_the_lead_named_id_n_by_search(mock_flow, emulator):
    existing = emulator.state.add_lead(name="ID_555")

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=555, client=api_client(mock_flow.account))

    assert lead_id == existing["id"]
    (search,) = searches(emulator)
    assert search["query"]["query"] == ["ID_555"]
    assert emulator.state.counters["leads_created"] == 0


def test_mock_mode_remembers_the_found_lead_as_an_alias(mock_flow, emulator):
    existing = emulator.state.add_lead(name="ID_555")

    lead_target(flow=mock_flow, rdesk_lead_id=555, client=api_client(mock_flow.account))

    alias = LeadAlias.objects.get()
    assert (alias.account, alias.rdesk_lead_id, alias.amocrm_lead_id) == (
        mock_flow.account,
        555,
        existing["id"],
    )


def test_mock_mode_search_takes_only_the_exact_name_among_near_matches(mock_flow, emulator):
    for name in ("ID_1234", "ID_123 (old)", "Клиент ID_123", "id_123"):
        emulator.state.add_lead(name=name)
    exact = emulator.state.add_lead(name="ID_123")

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=123, client=api_client(mock_flow.account))

    assert lead_id == exact["id"]


def test_mock_mode_creates_the_lead_when_the_search_finds_only_near_matches(mock_flow, emulator):
    near = emulator.state.add_lead(name="ID_1234")

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=123, client=api_client(mock_flow.account))

    assert lead_id != near["id"]
    assert emulator.state.lead(lead_id)["name"] == "ID_123"


def test_mock_mode_ignores_a_lead_that_holds_id_n_in_another_field(mock_flow, emulator):
    emulator.state.add_lead(
        name="Бронь Иванов",
        custom_fields_values=[{"field_id": 1305111, "values": [{"value": "ID_123"}]}],
    )

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=123, client=api_client(mock_flow.account))

    assert emulator.state.lead(lead_id)["name"] == "ID_123"


def test_mock_mode_takes_the_oldest_of_several_leads_named_id_n(mock_flow, emulator):
    first = emulator.state.add_lead(name="ID_77")
    emulator.state.add_lead(name="ID_77")

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=77, client=api_client(mock_flow.account))

    assert lead_id == first["id"]


def test_mock_mode_search_reads_every_page_of_near_matches(mock_flow, emulator):
    for n in range(260):  # more than one page of 250
        emulator.state.add_lead(name=f"ID_9{n:03d}")
    exact = emulator.state.add_lead(name="ID_9")

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=9, client=api_client(mock_flow.account))

    assert lead_id == exact["id"]
    assert [r["query"]["page"] for r in searches(emulator)] == [["1"], ["2"]]


# --- mock lead id mode: creating ID_N -------------------------------------------------


def test_missing_mock_lead_is_created_in_the_flows_pipeline_and_status(mock_flow, emulator):
    mock_flow.mock_pipeline_id, mock_flow.mock_status_id = MC_PIPELINE, MC_PAID
    mock_flow.save()

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    lead = emulator.state.lead(lead_id)
    assert lead["name"] == "ID_888"
    assert (lead["pipeline_id"], lead["status_id"]) == (MC_PIPELINE, MC_PAID)
    assert LeadAlias.objects.get(rdesk_lead_id=888).amocrm_lead_id == lead_id


def test_created_mock_lead_goes_to_the_main_pipelines_first_stage_when_none_is_set(
    mock_flow, emulator
):
    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    lead = emulator.state.lead(lead_id)
    assert (lead["pipeline_id"], lead["status_id"]) == (MAIN_PIPELINE, MAIN_FIRST_STAGE)
    (create,) = [r for r in emulator.state.requests if r["method"] == "POST"]
    assert create["body"] == [
        {
            "name": "ID_888",
            "request_id": "888",
            "pipeline_id": MAIN_PIPELINE,
            "status_id": MAIN_FIRST_STAGE,
        }
    ]


def test_created_mock_lead_goes_to_the_first_stage_of_the_pipeline_set_alone(mock_flow, emulator):
    mock_flow.mock_pipeline_id = BOOKINGS_PIPELINE
    mock_flow.save()

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    lead = emulator.state.lead(lead_id)
    assert (lead["pipeline_id"], lead["status_id"]) == (BOOKINGS_PIPELINE, NEW_BOOKING)


def test_created_mock_lead_goes_to_the_pipeline_holding_the_status_set_alone(mock_flow, emulator):
    mock_flow.mock_status_id = MC_PAID
    mock_flow.save()

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    lead = emulator.state.lead(lead_id)
    assert (lead["pipeline_id"], lead["status_id"]) == (MC_PIPELINE, MC_PAID)


def test_default_stage_comes_from_the_fetched_catalogue_without_asking_amocrm(mock_flow, emulator):
    catalogue_refresh(account=mock_flow.account)
    emulator.state.requests.clear()

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    assert (emulator.state.lead(lead_id)["status_id"]) == MAIN_FIRST_STAGE
    assert [r["path"] for r in emulator.state.requests] == ["/api/v4/leads", "/api/v4/leads"]


def test_default_stage_without_a_catalogue_comes_from_amocrms_pipeline_list(mock_flow, emulator):
    lead_target(flow=mock_flow, rdesk_lead_id=888, client=api_client(mock_flow.account))

    paths = [(r["method"], r["path"]) for r in emulator.state.requests]
    assert paths == [
        ("GET", "/api/v4/leads"),
        ("GET", "/api/v4/leads/pipelines"),
        ("POST", "/api/v4/leads"),
    ]


def test_refused_creation_fails_the_event_with_amocrms_reason(mock_flow, emulator):
    mock_flow.mock_pipeline_id, mock_flow.mock_status_id = BOOKINGS_PIPELINE, MC_PAID
    mock_flow.save()
    event = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error.startswith(
        "Cannot find or create the lead: AmoCRM refused to create lead ID_888 in pipeline "
        f"{BOOKINGS_PIPELINE}, status {MC_PAID}: Bad Request: Request validation failed; "
        "status_id:"
    )
    assert not LeadAlias.objects.exists()
    assert [a.request_method for a in event.delivery_attempts.order_by("id")] == ["GET", "POST"]


def test_search_failing_with_a_server_error_is_retried(mock_flow, amocrm_http):
    mock_flow.account.base_url = "https://clinic.amocrm.ru"
    mock_flow.account.save()
    amocrm_http.get("https://clinic.amocrm.ru/api/v4/leads", status=503, body="down")
    event = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.last_error == "Unavailable: HTTP 503 Service Unavailable"
    assert not LeadAlias.objects.exists()


# --- mock lead id mode: the alias -----------------------------------------------------


def test_remembered_alias_is_used_without_any_call(mock_flow, emulator):
    LeadAliasFactory(account=mock_flow.account, rdesk_lead_id=555, amocrm_lead_id=SAMPLE_LEAD)

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=555, client=api_client(mock_flow.account))

    assert lead_id == SAMPLE_LEAD
    assert emulator.state.requests == []


def test_second_event_for_the_same_lead_makes_no_second_search(mock_flow, emulator):
    first = booking_event(mock_flow, lead_id=888)
    assert event_deliver(event_id=first.pk) == EventStatus.DELIVERED
    second = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=second.pk) == EventStatus.DELIVERED

    assert len(searches(emulator)) == 1
    assert emulator.state.counters["leads_created"] == 1
    assert [a.request_method for a in second.delivery_attempts.all()] == ["PATCH"]


def test_aliases_belong_to_one_account(mock_flow, emulator):
    LeadAliasFactory(account=AccountFactory(), rdesk_lead_id=555, amocrm_lead_id=1)

    lead_id = lead_target(flow=mock_flow, rdesk_lead_id=555, client=api_client(mock_flow.account))

    assert lead_id != 1
    assert len(searches(emulator)) == 1


def test_mock_event_updates_the_aliased_lead_with_the_mapped_values(mock_flow, emulator):
    event = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    (lead,) = leads_named(emulator, "ID_888")
    assert lead["price"] == 153887
    assert last_patch(emulator)["path"] == f"/api/v4/leads/{lead['id']}"
    assert emulator.state.lead(SAMPLE_LEAD)["price"] == 0  # the RDESK id is not a lead here


def test_aliased_lead_deleted_in_amocrm_fails_naming_the_alias(mock_flow, amocrm_http):
    mock_flow.account.base_url = "https://clinic.amocrm.ru"
    mock_flow.account.save()
    LeadAliasFactory(account=mock_flow.account, rdesk_lead_id=888, amocrm_lead_id=24000009)
    amocrm_http.patch(
        "https://clinic.amocrm.ru/api/v4/leads/24000009",
        status=404,
        json={"title": "Not Found", "detail": "Lead 24000009 not found"},
    )
    event = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == (
        "Lead 24000009 (ID_888) not found in AmoCRM: Not Found: Lead 24000009 not found"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_on_events_for_one_new_lead_create_it_once_and_send_the_newest(
    mock_flow, emulator, monkeypatch
):
    first = booking_event(mock_flow, lead_id=777)
    second = booking_event(mock_flow, lead_id=777)
    original_request = AmoCRMClient.request

    def slow_search(self, method, path, **kwargs):
        body = original_request(self, method, path, **kwargs)
        if "query" in (kwargs.get("params") or {}):
            time.sleep(0.3)  # the other worker tries to claim meanwhile
        return body

    monkeypatch.setattr(AmoCRMClient, "request", slow_search)
    outcomes = {}

    def deliver(event_id: int) -> None:
        try:
            outcomes.update(account_drain(account_id=mock_flow.account_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(e.pk,)) for e in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # One worker held the lead with both events; the other found nothing to take.
    assert outcomes == {first.pk: EventStatus.SKIPPED, second.pk: EventStatus.DELIVERED}
    (lead,) = leads_named(emulator, "ID_777")
    assert emulator.state.counters["leads_created"] == 1
    assert LeadAlias.objects.get(rdesk_lead_id=777).amocrm_lead_id == lead["id"]
    patched = [r["path"] for r in emulator.state.requests if r["method"] == "PATCH"]
    assert patched == [f"/api/v4/leads/{lead['id']}"]


# --- pipeline stage by booking status -------------------------------------------------


def stage_for(flow: Flow, booking_status: str, pipeline_id: int, status_id: int) -> None:
    FlowStatusMapping.objects.create(
        flow=flow, booking_status=booking_status, pipeline_id=pipeline_id, status_id=status_id
    )


def test_mapped_booking_status_moves_the_lead_to_its_stage(emulator_flow, emulator):
    stage_for(emulator_flow, "waiting", BOOKINGS_PIPELINE, CHECKED_IN)
    event = booking_event(emulator_flow)  # the sample booking is "waiting"

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    lead = emulator.state.lead(SAMPLE_LEAD)
    assert (lead["pipeline_id"], lead["status_id"]) == (BOOKINGS_PIPELINE, CHECKED_IN)
    sent = last_patch(emulator)["body"]
    assert (sent["pipeline_id"], sent["status_id"]) == (BOOKINGS_PIPELINE, CHECKED_IN)
    assert sent["price"] == 153887  # the fields go in the same update


def test_won_status_is_sent_with_its_pipeline(emulator_flow, emulator):
    stage_for(emulator_flow, "checkout", BOOKINGS_PIPELINE, WON)
    event = booking_event(emulator_flow, item={"status": "checkout"})

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    sent = last_patch(emulator)["body"]
    assert (sent["pipeline_id"], sent["status_id"]) == (BOOKINGS_PIPELINE, WON)
    lead = emulator.state.lead(SAMPLE_LEAD)
    assert (lead["pipeline_id"], lead["status_id"]) == (BOOKINGS_PIPELINE, WON)
    assert lead["closed_at"] is not None


def test_unmapped_booking_status_leaves_the_stage_alone(emulator_flow, emulator):
    stage_for(emulator_flow, "checkin", BOOKINGS_PIPELINE, CHECKED_IN)
    event = booking_event(emulator_flow)  # "waiting": not mapped

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    sent = last_patch(emulator)["body"]
    assert "status_id" not in sent
    assert "pipeline_id" not in sent
    assert emulator.state.lead(SAMPLE_LEAD)["status_id"] == NEW_BOOKING


def test_stage_move_is_sent_even_when_no_field_is_mapped(emulator_flow, emulator):
    emulator_flow.mappings.update(enabled=False)
    emulator_flow.price_source = ""
    emulator_flow.save()
    stage_for(emulator_flow, "waiting", BOOKINGS_PIPELINE, CHECKED_IN)
    event = booking_event(emulator_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    assert last_patch(emulator)["body"] == {
        "pipeline_id": BOOKINGS_PIPELINE,
        "status_id": CHECKED_IN,
    }


def test_mock_lead_is_created_then_moved_by_the_booking_status(mock_flow, emulator):
    stage_for(mock_flow, "waiting", BOOKINGS_PIPELINE, CHECKED_IN)
    event = booking_event(mock_flow, lead_id=888)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    (lead,) = leads_named(emulator, "ID_888")
    assert (lead["pipeline_id"], lead["status_id"]) == (BOOKINGS_PIPELINE, CHECKED_IN)


def test_medical_centre_flow_never_moves_the_lead(emulator_account, emulator):
    flow = Flow.objects.get(kind="mc")
    flow.account = emulator_account
    flow.save()
    # Written past validation, as a stale row could be: delivery must still ignore it.
    stage_for(flow, "booked", MC_PIPELINE, MC_PAID)
    item = load_item("rdesk-mc.json")
    event = InboundEventFactory(flow=flow, payload=item, lead_id=str(item["lead_id"]))

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    assert "status_id" not in last_patch(emulator)["body"]


def test_booking_statuses_offered_are_exactly_the_ones_rdesk_sends():
    assert tuple(BookingStatus.values) == BOOKING_STATUSES


def test_status_mapping_on_a_medical_centre_flow_is_refused(mc_flow):
    mapping = FlowStatusMapping(
        flow=mc_flow, booking_status="booked", pipeline_id=MC_PIPELINE, status_id=MC_PAID
    )

    with pytest.raises(ValidationError, match="only booking flows move leads"):
        mapping.full_clean()


@pytest.fixture
def catalogue(booked_flow):
    """Two pipelines of the flow's account as fetched from AmoCRM."""
    bookings = PipelineFactory(account=booked_flow.account, pipeline_id=BOOKINGS_PIPELINE)
    StatusFactory(pipeline=bookings, status_id=80453090, type=1)  # Unsorted
    StatusFactory(pipeline=bookings, status_id=CHECKED_IN)
    medical = PipelineFactory(account=booked_flow.account, pipeline_id=MC_PIPELINE)
    StatusFactory(pipeline=medical, status_id=MC_PAID)
    return booked_flow


@pytest.mark.parametrize(
    ("pipeline_id", "status_id", "field", "message"),
    [
        (999, CHECKED_IN, "pipeline_id", "Pipeline 999 is not in the account's catalogue."),
        (BOOKINGS_PIPELINE, MC_PAID, "status_id", f"Status {MC_PAID} is not a stage of pipeline"),
        (BOOKINGS_PIPELINE, 80453090, "status_id", "Leads cannot be put into the Unsorted"),
    ],
)
def test_status_mapping_must_name_a_stage_of_its_pipeline_in_the_catalogue(
    catalogue, pipeline_id, status_id, field, message
):
    mapping = FlowStatusMapping(
        flow=catalogue, booking_status="checkin", pipeline_id=pipeline_id, status_id=status_id
    )

    with pytest.raises(ValidationError) as raised:
        mapping.full_clean()

    assert message in raised.value.message_dict[field][0]


@pytest.mark.parametrize("status_id", [CHECKED_IN, WON, 143])
def test_status_mapping_to_a_stage_of_its_pipeline_is_accepted(catalogue, status_id):
    FlowStatusMapping(
        flow=catalogue,
        booking_status="checkout",
        pipeline_id=BOOKINGS_PIPELINE,
        status_id=status_id,
    ).full_clean()


def test_status_mapping_is_not_judged_before_the_catalogue_is_fetched(booked_flow):
    FlowStatusMapping(
        flow=booked_flow, booking_status="checkin", pipeline_id=1, status_id=2
    ).full_clean()


def test_mock_status_outside_the_mock_pipeline_is_refused(catalogue):
    catalogue.mock_pipeline_id, catalogue.mock_status_id = BOOKINGS_PIPELINE, MC_PAID

    with pytest.raises(ValidationError) as raised:
        catalogue.full_clean()

    assert "mock_status_id" in raised.value.message_dict


# --- ordering per lead ----------------------------------------------------------------

LEAD_URL = f"https://clinic.amocrm.ru/api/v4/leads/{SAMPLE_LEAD}"
LEAD_ANSWER = {"id": SAMPLE_LEAD, "updated_at": 1751621727}


def minutes_ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def test_older_event_after_a_newer_one_was_delivered_is_skipped_naming_it(booked_flow, amocrm_http):
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    newer = booking_event(booked_flow, received_at=minutes_ago(5), status=EventStatus.DELIVERED)

    assert event_deliver(event_id=older.pk) == EventStatus.SKIPPED

    older.refresh_from_db()
    assert older.last_error.startswith(f"Older than event #{newer.pk} (received ")
    assert older.last_error.endswith(
        "already delivered to this lead: sending this one would overwrite newer data."
    )
    assert len(amocrm_http.calls) == 0
    assert not older.delivery_attempts.exists()


def test_old_event_replayed_after_a_newer_one_succeeded_is_skipped(
    booked_flow, amocrm_http, enqueued
):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    assert event_deliver(event_id=older.pk) == EventStatus.DELIVERED
    newer = booking_event(booked_flow, received_at=minutes_ago(5))
    assert event_deliver(event_id=newer.pk) == EventStatus.DELIVERED

    events_replay(event_ids=[older.pk], source=Replay.Source.ADMIN_ACTION)

    assert event_deliver(event_id=older.pk) == EventStatus.SKIPPED
    assert len(amocrm_http.calls) == 2


def test_replaying_the_latest_delivered_event_sends_it_again(booked_flow, amocrm_http, enqueued):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    booking_event(booked_flow, received_at=minutes_ago(10), status=EventStatus.DELIVERED)
    latest = booking_event(booked_flow, received_at=minutes_ago(5), status=EventStatus.DELIVERED)

    events_replay(event_ids=[latest.pk], source=Replay.Source.ADMIN_ACTION)

    assert event_deliver(event_id=latest.pk) == EventStatus.DELIVERED


def test_newer_event_is_delivered_after_an_older_one(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    booking_event(booked_flow, received_at=minutes_ago(10), status=EventStatus.DELIVERED)
    newer = booking_event(booked_flow, received_at=minutes_ago(5))

    assert event_deliver(event_id=newer.pk) == EventStatus.DELIVERED


@pytest.mark.parametrize("status", [EventStatus.FAILED, EventStatus.SKIPPED])
def test_older_event_is_delivered_when_the_newer_one_was_not(booked_flow, amocrm_http, status):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    booking_event(booked_flow, received_at=minutes_ago(5), status=status)

    assert event_deliver(event_id=older.pk) == EventStatus.DELIVERED


def test_pending_events_for_one_lead_become_one_update_with_the_newest_values(
    booked_flow, amocrm_http
):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    money = load_item("rdesk-booked.json")["money"]
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    newer = booking_event(
        booked_flow, item={"money": {**money, "total": 1000}}, received_at=minutes_ago(5)
    )

    assert event_deliver(event_id=older.pk) == EventStatus.SKIPPED

    (call,) = amocrm_http.calls
    assert json.loads(call.request.body)["price"] == 1000
    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.status == EventStatus.DELIVERED
    assert older.last_error.startswith(f"Superseded by event #{newer.pk} (received ")
    assert not older.delivery_attempts.exists()


def test_a_burst_for_one_lead_is_skipped_in_one_statement_not_row_by_row(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    older = [booking_event(booked_flow, received_at=minutes_ago(10 - i / 10)) for i in range(30)]
    newest = booking_event(booked_flow, received_at=minutes_ago(1))

    with CaptureQueriesContext(connection) as queries:
        account_drain(account_id=booked_flow.account_id)

    skips = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "sync_inboundevent"') and "skipped" in q["sql"]
    ]
    assert len(skips) == 1
    assert "CASE" not in skips[0]
    reasons = set(
        InboundEvent.objects.filter(pk__in=[e.pk for e in older]).values_list("last_error")
    )
    assert len(reasons) == 1
    assert next(iter(reasons))[0].startswith(f"Superseded by event #{newest.pk} ")


def test_items_of_one_request_are_ordered_by_their_position(booked_flow, amocrm_http):
    arrived = minutes_ago(5)
    first = booking_event(booked_flow, received_at=arrived, item_index=0)
    second = booking_event(
        booked_flow, received_at=arrived, item_index=1, status=EventStatus.DELIVERED
    )

    assert event_deliver(event_id=first.pk) == EventStatus.SKIPPED

    first.refresh_from_db()
    assert f"event #{second.pk}" in first.last_error


def test_a_newer_event_of_another_lead_does_not_hold_an_older_one_back(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    booking_event(
        booked_flow, lead_id=11642589, received_at=minutes_ago(5), status=EventStatus.DELIVERED
    )

    assert event_deliver(event_id=older.pk) == EventStatus.DELIVERED


def test_same_lead_id_in_another_account_does_not_hold_an_event_back(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    other_flow = Flow.objects.get(kind="mc")
    other_flow.account = AccountFactory()
    other_flow.save()
    booking_event(other_flow, received_at=minutes_ago(5), status=EventStatus.DELIVERED)

    assert event_deliver(event_id=older.pk) == EventStatus.DELIVERED


def test_newer_delivery_from_the_other_flow_of_the_account_holds_an_older_event_back(
    booked_flow, mc_flow, amocrm_http
):
    # Both flows write the shared fields (created at, paid, RDESK id) of the same lead.
    older = booking_event(booked_flow, received_at=minutes_ago(10))
    InboundEventFactory(
        flow=mc_flow,
        lead_id=str(SAMPLE_LEAD),
        received_at=minutes_ago(5),
        status=EventStatus.DELIVERED,
    )

    assert event_deliver(event_id=older.pk) == EventStatus.SKIPPED
