"""Delivering medical-centre cards (/zdrav/mc) to the emulator, sample and edge payloads.

Sums are computed by hand from the fixture files, never by the transform under test.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.delivery import event_deliver
from integrations.sync.models import EventStatus, FieldMapping, Flow, InboundEvent
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

MOSCOW = ZoneInfo("Europe/Moscow")
SAMPLE_LEAD = 11642589
BIRTHDAY_FIELD = 1305201
MC_TOTAL_FIELD = 1305203
TEXT_FIELD = 1304929  # a textarea of the emulator's account
CREATED_AT, PAID, ZDRAV_ID = 1287599, 1305167, 1305111


@pytest.fixture
def mc_on_emulator(emulator_account, emulator) -> Flow:
    """The seeded medical-centre flow on the emulator, with the edge fixtures' leads."""
    flow = Flow.objects.get(kind="mc")
    flow.account = emulator_account
    flow.save()
    FieldMapping.objects.create(
        flow=flow, source="birthday", field_id=BIRTHDAY_FIELD, field_type="birthday"
    )
    for lead_id in (600, 601, 602):
        emulator.state.add_lead(id=lead_id, name=f"Медцентр {lead_id}")
    return flow


def card_event(flow: Flow, fixture: str, **changes) -> InboundEvent:
    item = {**load_item(fixture), **changes}
    return InboundEventFactory(
        flow=flow,
        payload=item,
        rdesk_id=str(item.get("id", "")),
        lead_id=str(item.get("lead_id", "")),
        status=EventStatus.QUEUED,
    )


def field_values(lead: dict) -> dict[int, list]:
    return {
        f["field_id"]: [v["value"] for v in f["values"]] for f in lead["custom_fields_values"] or []
    }


def moment(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def midnight(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=MOSCOW).timestamp())


def test_mc_sample_lands_on_its_lead_with_hand_computed_sums(mc_on_emulator, emulator):
    event = card_event(mc_on_emulator, "rdesk-mc.json")

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    lead = emulator.state.lead(SAMPLE_LEAD)
    # Treatment 850 paid + packet 4000 paid + complex 8000 paid; the 1000 lab is cancelled.
    assert lead["price"] == 12850
    assert field_values(lead) == {
        CREATED_AT: [int(datetime(2020, 9, 14, 12, 18, tzinfo=UTC).timestamp())],
        PAID: ["12850"],
        ZDRAV_ID: ["185588"],
        BIRTHDAY_FIELD: [midnight("1950-12-01")],
    }


def test_card_without_any_service_is_delivered_with_zero_sums(mc_on_emulator, emulator):
    event = card_event(mc_on_emulator, "rdesk-mc-empty.json")

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    lead = emulator.state.lead(600)
    assert lead["price"] == 0
    values = field_values(lead)
    assert values[PAID] == ["0"]
    assert values[ZDRAV_ID] == ["200001"]
    assert BIRTHDAY_FIELD not in values  # not in the payload: the field is left alone


def test_card_with_null_blocks_and_prices_is_delivered(mc_on_emulator, emulator):
    FieldMapping.objects.create(
        flow=mc_on_emulator, source="packets_text", field_id=TEXT_FIELD, field_type="textarea"
    )
    event = card_event(mc_on_emulator, "rdesk-mc-nulls.json")

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    lead = emulator.state.lead(602)
    # Only the complex has a price (1500.00, paid); the packet's price is null.
    assert lead["price"] == 1500
    values = field_values(lead)
    assert values[PAID] == ["1500"]
    assert values[TEXT_FIELD] == ["1. Пакет без данных"]
    assert BIRTHDAY_FIELD not in values
    assert values[CREATED_AT] == [moment("2021-04-01T09:00:00+03:00")]


def test_edge_card_sums_skip_cancelled_items_and_keep_unknown_statuses(mc_on_emulator, emulator):
    FieldMapping.objects.create(
        flow=mc_on_emulator, source="total", field_id=MC_TOTAL_FIELD, field_type="numeric"
    )
    FieldMapping.objects.create(
        flow=mc_on_emulator, source="treatments_text", field_id=TEXT_FIELD, field_type="textarea"
    )
    event = card_event(mc_on_emulator, "rdesk-mc-edge.json")

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    lead = emulator.state.lead(601)
    values = field_values(lead)
    # Live: treatments null(0) + 250.5 "planned" + 300 "Done", lab 600, packet null(0).
    # Cancelled, whatever the spelling: treatment 700, lab 400, packet 5000.
    assert values[MC_TOTAL_FIELD] == ["1150.5"]
    assert lead["price"] == 1151  # AmoCRM's price is whole roubles, rounded half up
    assert values[PAID] == ["600"]  # the null-priced paid treatment adds nothing
    lines = values[TEXT_FIELD][0].splitlines()
    assert lines[1].startswith("2. Новый статус — planned, ")
    assert lines[2].startswith("3. Отменённая — отменено, ")
    # The timestamp comes from the naive createdAt read as Moscow time.
    assert values[CREATED_AT] == [moment("2021-03-01T10:00:00+03:00")]


def test_invalid_card_fails_naming_each_problem_without_a_call(mc_on_emulator, emulator):
    event = card_event(mc_on_emulator, "rdesk-mc-invalid.json")

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error.startswith("Invalid payload: createdAt: Datetime has wrong format.")
    for problem in (
        "lead_id: Must be a positive integer; got 0.",
        "treatments.0.visit_date: Use a date (YYYY-MM-DD) or an ISO 8601 date and time; "
        'got "завтра".',
        "treatments.0.price: A valid number is required.",
        "labs.0.lab_item_id: This field is required.",
        'packets: Expected a list of items but got type "dict".',
    ):
        assert problem in event.last_error
    assert emulator.state.requests == []


def test_card_for_a_lead_missing_in_amocrm_fails_naming_the_lead(mc_on_emulator, emulator):
    event = card_event(mc_on_emulator, "rdesk-mc.json", lead_id=999)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == "Lead 999 not found in AmoCRM: Not Found: Lead 999 not found"


@pytest.mark.parametrize(
    "fixture",
    [
        "rdesk-mc.json",
        "rdesk-mc-empty.json",
        "rdesk-mc-edge.json",
        "rdesk-mc-nulls.json",
        "rdesk-mc-invalid.json",
    ],
)
def test_no_card_ends_in_an_internal_error(mc_on_emulator, fixture):
    event = card_event(mc_on_emulator, fixture)

    event_deliver(event_id=event.pk)

    event.refresh_from_db()
    assert event.status in (EventStatus.DELIVERED, EventStatus.FAILED)
    assert "Internal error" not in event.last_error
