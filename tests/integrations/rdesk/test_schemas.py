"""RDESK item schemas: what each flow accepts, what it refuses and how the refusal reads."""

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from integrations.rdesk.schemas import (
    BookingSerializer,
    LeadIdField,
    MedicalCentreSerializer,
    errors_describe,
)

from .payloads import load_item

MOSCOW = ZoneInfo("Europe/Moscow")


def booking(**changes) -> dict:
    item = load_item("rdesk-booked.json")
    item.update(changes)
    return item


def card(**changes) -> dict:
    item = load_item("rdesk-mc.json")
    item.update(changes)
    return item


def validate(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def errors_of(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    assert not serializer.is_valid()
    return serializer.errors


# Booked flow: the sample.


def test_booked_sample_is_valid():
    validate(BookingSerializer, load_item("rdesk-booked.json"))


def test_booked_sample_validates_to_typed_values():
    data = validate(BookingSerializer, load_item("rdesk-booked.json"))

    assert data["status"] == "waiting"
    assert data["bookedAt"] == datetime(2022, 9, 5, 11, 22, 33, tzinfo=UTC)
    assert (data["checkin"], data["checkout"]) == (date(2026, 8, 25), date(2026, 9, 5))
    assert data["money"] == {"total": Decimal("153887"), "paid": Decimal("61361")}
    assert (data["id"], data["lead_id"], data["docNum"]) == (88888, 23392663, "33333")
    assert data["billData"] == [
        {"billNum": "77777", "billSum": Decimal("147966.3"), "billPaidSum": Decimal("59000")}
    ]


def test_booked_sample_guest_keeps_every_field_and_blank_birthday_is_none():
    data = validate(BookingSerializer, load_item("rdesk-booked.json"))

    assert data["extData"]["guests"][0] == {
        "fio": "Фамилия1 Имя1 Отчество2",
        "birthday": None,
        "stayCount": 1,
        "roomCategory": "Стандарт без балкона",
        "ageGroup": "Взрослый",
        "cure": "Лечение суставов и позвоночника",
        "uid": "3E024545345345HHD345345345SDF001",
        "billNum": "77777",
    }


# Booked flow: optional blocks.


def test_booking_with_only_required_fields_gets_empty_optional_values():
    data = validate(BookingSerializer, load_item("rdesk-booked-minimal.json"))

    assert (data["name"], data["phone"], data["email"], data["docNum"]) == ("", "", "", "")
    assert data["billData"] == []
    assert data["extData"] == {"guests": []}


def test_booking_nulls_become_empty_values():
    data = validate(BookingSerializer, load_item("rdesk-booked-nulls.json"))

    assert data["name"] == ""
    assert data["billData"] == []
    assert data["extData"] == {"guests": []}


def test_booking_ext_data_without_guests_has_an_empty_guest_list():
    data = validate(BookingSerializer, booking(extData={}))

    assert data["extData"] == {"guests": []}


def test_booking_ignores_unknown_keys():
    data = validate(BookingSerializer, booking(newRdeskField={"x": 1}))

    assert "newRdeskField" not in data


def test_booking_email_is_kept_as_text_even_when_it_is_not_an_address():
    data = validate(BookingSerializer, load_item("rdesk-booked-nulls.json"))

    assert data["email"] == "нет почты"


def test_booking_naive_booked_at_is_moscow_time():
    data = validate(BookingSerializer, load_item("rdesk-booked-nulls.json"))

    assert data["bookedAt"] == datetime(2026, 1, 10, 12, 30, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("doc_num", "expected"),
    [(33333, "33333"), ("A-17", "A-17"), ("", ""), (None, "")],
    ids=["int", "string", "blank", "null"],
)
def test_booking_doc_num_is_kept_as_text(doc_num, expected):
    assert validate(BookingSerializer, booking(docNum=doc_num))["docNum"] == expected


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        ({"total": 153887, "paid": 61361}, (Decimal("153887"), Decimal("61361"))),
        ({"total": "147966.3", "paid": "0"}, (Decimal("147966.3"), Decimal("0"))),
        ({"total": 147966.3, "paid": 0.5}, (Decimal("147966.3"), Decimal("0.5"))),
    ],
    ids=["ints", "numeric-strings", "floats"],
)
def test_booking_money_accepts_numbers_and_numeric_strings(money, expected):
    data = validate(BookingSerializer, booking(money=money))

    assert (data["money"]["total"], data["money"]["paid"]) == expected


@pytest.mark.parametrize("status", ["booked", "checkin", "checkout", "cancel", "waiting"])
def test_booking_accepts_every_rdesk_status(status):
    assert validate(BookingSerializer, booking(status=status))["status"] == status


def test_booking_may_check_out_on_the_check_in_day():
    validate(BookingSerializer, booking(checkin="2026-08-25", checkout="2026-08-25"))


# Booked flow: refusals and their messages.


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"status": "paid"},
            "status",
            '"paid" is not a valid status; expected one of: '
            "booked, checkin, checkout, cancel, waiting.",
        ),
        (
            {"status": ""},
            "status",
            '"" is not a valid status; expected one of: '
            "booked, checkin, checkout, cancel, waiting.",
        ),
        (
            {"bookedAt": "05.09.2022 11:22"},
            "bookedAt",
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        ),
        (
            {"checkin": "25.08.2026"},
            "checkin",
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        ),
        (
            {"checkout": "2026-09-05T12:00:00Z"},
            "checkout",
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        ),
        (
            {"checkin": "2026-09-06", "checkout": "2026-09-05"},
            "checkout",
            "Check-out date must not be before the check-in date.",
        ),
        ({"id": "abc"}, "id", "A valid integer is required."),
        ({"id": None}, "id", "This field may not be null."),
        ({"money": "153887"}, "money", "Invalid data. Expected a dictionary, but got str."),
        (
            {"billData": {"billNum": "1"}},
            "billData",
            'Expected a list of items but got type "dict".',
        ),
    ],
    ids=[
        "unknown-status",
        "blank-status",
        "booked-at-format",
        "checkin-format",
        "checkout-datetime",
        "checkout-before-checkin",
        "id-not-integer",
        "id-null",
        "money-not-object",
        "bills-not-list",
    ],
)
def test_booking_rejects_invalid_value_naming_the_field(changes, field, message):
    assert errors_describe(errors_of(BookingSerializer, booking(**changes))) == (
        f"{field}: {message}"
    )


@pytest.mark.parametrize(
    "field", ["status", "bookedAt", "checkin", "checkout", "money", "id", "lead_id"]
)
def test_booking_requires_field(field):
    item = booking()
    del item[field]

    assert errors_of(BookingSerializer, item) == {field: ["This field is required."]}


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        ({"total": "много", "paid": 0}, "money.total: A valid number is required."),
        (
            {"total": 100, "paid": -1},
            "money.paid: Ensure this value is greater than or equal to 0.",
        ),
        ({"total": 100}, "money.paid: This field is required."),
        ({"total": True, "paid": 0}, "money.total: A valid number is required."),
    ],
    ids=["word", "negative", "missing", "bool"],
)
def test_booking_money_must_be_non_negative_numbers(money, expected):
    assert errors_describe(errors_of(BookingSerializer, booking(money=money))) == expected


@pytest.mark.parametrize(
    ("bill", "expected"),
    [
        (
            {"billNum": "1", "billSum": "x", "billPaidSum": "0"},
            "billData.0.billSum: A valid number is required.",
        ),
        ({"billNum": "1", "billSum": "10"}, "billData.0.billPaidSum: This field is required."),
        ({"billSum": "10", "billPaidSum": "0"}, "billData.0.billNum: This field is required."),
    ],
    ids=["sum-not-number", "paid-sum-missing", "number-missing"],
)
def test_booking_bill_needs_number_and_both_sums(bill, expected):
    assert errors_describe(errors_of(BookingSerializer, booking(billData=[bill]))) == expected


@pytest.mark.parametrize(
    ("guest", "expected"),
    [
        (
            {"fio": "Гость", "birthday": "01.12.1950"},
            "extData.guests.0.birthday: Date has wrong format. "
            "Use one of these formats instead: YYYY-MM-DD.",
        ),
        (
            {"fio": "Гость", "stayCount": "two"},
            "extData.guests.0.stayCount: A valid integer is required.",
        ),
        ({"birthday": ""}, "extData.guests.0.fio: This field is required."),
    ],
    ids=["birthday-format", "stay-count-not-integer", "fio-missing"],
)
def test_booking_guest_rules(guest, expected):
    item = booking(extData={"guests": [guest]})

    assert errors_describe(errors_of(BookingSerializer, item)) == expected


def test_booking_guest_birthday_is_a_date_when_given():
    item = booking(extData={"guests": [{"fio": "Гость", "birthday": "1950-12-01"}]})

    assert validate(BookingSerializer, item)["extData"]["guests"][0]["birthday"] == date(
        1950, 12, 1
    )


# Lead id.


@pytest.mark.parametrize(
    ("value", "expected"),
    [(23392663, 23392663), ("23392663", 23392663), (" 42 ", 42), (1, 1)],
    ids=["int", "string", "padded-string", "one"],
)
def test_lead_id_accepts_positive_integers_as_numbers_or_strings(value, expected):
    assert LeadIdField().run_validation(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", 'lead_id: Must be a positive integer; got "abc".'),
        (0, "lead_id: Must be a positive integer; got 0."),
        ("0", 'lead_id: Must be a positive integer; got "0".'),
        (-5, "lead_id: Must be a positive integer; got -5."),
        ("-5", 'lead_id: Must be a positive integer; got "-5".'),
        (1.5, "lead_id: Must be a positive integer; got 1.5."),
        ("1.5", 'lead_id: Must be a positive integer; got "1.5".'),
        ("", 'lead_id: Must be a positive integer; got "".'),
        (True, "lead_id: Must be a positive integer; got True."),
        (None, "lead_id: This field may not be null."),
    ],
    ids=[
        "word",
        "zero",
        "zero-string",
        "negative",
        "negative-string",
        "fraction",
        "fraction-string",
        "blank",
        "bool",
        "null",
    ],
)
def test_lead_id_rejects_anything_but_a_positive_integer(value, message):
    assert errors_describe(errors_of(BookingSerializer, booking(lead_id=value))) == message


# Medical-centre flow.


def test_mc_sample_is_valid():
    validate(MedicalCentreSerializer, load_item("rdesk-mc.json"))


def test_mc_sample_validates_to_typed_values():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc.json"))

    assert data["createdAt"] == datetime(2020, 9, 14, 12, 18, tzinfo=UTC)
    assert data["birthday"] == date(1950, 12, 1)
    assert (data["id"], data["lead_id"], data["email"]) == (185588, 11642589, "")
    assert data["treatments"] == [
        {
            "item_id": 987654321,
            "status": "set",
            "action": "Консультация кардиолога",
            "visit_date": datetime(2020, 9, 19, 10, 0, tzinfo=UTC),
            "pay": True,
            "price": Decimal("850"),
            "paid": True,
        }
    ]


def test_mc_lab_visit_day_stays_a_date_and_missing_link_is_none():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc.json"))

    lab = data["labs"][0]
    assert (type(lab["visit_date"]), lab["visit_date"]) == (date, date(2020, 9, 19))
    assert data["complex"][0]["labs"][0]["treatment_item_id"] is None


def test_mc_nested_treatment_without_price_gets_none_price_and_paid():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc.json"))

    nested = data["packets"][0]["treatments"][0]
    assert (nested["pay"], nested["price"], nested["paid"]) == (None, None, None)


def test_mc_packet_without_status_gets_blank_status():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc.json"))

    assert data["packets"][0]["status"] == ""


def test_mc_card_without_lists_gets_empty_lists():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-empty.json"))

    assert [data[key] for key in ("treatments", "labs", "packets", "complex")] == [[], [], [], []]
    assert data["birthday"] is None


def test_mc_null_list_inside_a_packet_is_empty():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-edge.json"))

    assert data["packets"][0]["treatments"] == []


def test_mc_keeps_unknown_statuses():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-edge.json"))

    assert [item["status"] for item in data["treatments"]] == [
        "set",
        "planned",
        "cancelled",
        "Done",
    ]


def test_mc_null_price_and_null_visit_date_are_none():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-edge.json"))

    assert (data["treatments"][0]["price"], data["treatments"][0]["visit_date"]) == (None, None)


def test_mc_naive_visit_time_is_moscow_time():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-edge.json"))

    assert data["treatments"][1]["visit_date"] == datetime(2021, 3, 2, 9, 30, tzinfo=MOSCOW)


def test_mc_blank_birthday_is_none():
    data = validate(MedicalCentreSerializer, load_item("rdesk-mc-edge.json"))

    assert data["birthday"] is None


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("createdAt",),
            "14.09.2020",
            "createdAt: Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        ),
        (
            ("birthday",),
            "01.12.1950",
            "birthday: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        ),
        (("lead_id",), "ID_5", 'lead_id: Must be a positive integer; got "ID_5".'),
        (("id",), "x", "id: A valid integer is required."),
        (
            ("treatments", 0, "visit_date"),
            "19.09.2020",
            "treatments.0.visit_date: Use a date (YYYY-MM-DD) or an ISO 8601 date and time; "
            'got "19.09.2020".',
        ),
        (
            ("treatments", 0, "visit_date"),
            20200919,
            "treatments.0.visit_date: Use a date (YYYY-MM-DD) or an ISO 8601 date and time; "
            "got 20200919.",
        ),
        (("treatments", 0, "price"), "дорого", "treatments.0.price: A valid number is required."),
        (("treatments", 0, "paid"), "maybe", "treatments.0.paid: Must be a valid boolean."),
        (("labs", 0, "lab_item_id"), "x", "labs.0.lab_item_id: A valid integer is required."),
        (
            ("packets", 0, "treatments", 1, "item_id"),
            None,
            "packets.0.treatments.1.item_id: This field may not be null.",
        ),
        (
            ("complex", 0, "labs", 0, "visit_date"),
            "2020-02-30",
            "complex.0.labs.0.visit_date: Use a date (YYYY-MM-DD) or an ISO 8601 date and "
            'time; got "2020-02-30".',
        ),
        (("complex",), "none", 'complex: Expected a list of items but got type "str".'),
    ],
    ids=[
        "created-at-format",
        "birthday-format",
        "lead-id",
        "id",
        "visit-date-format",
        "visit-date-number",
        "price-word",
        "paid-word",
        "lab-item-id",
        "nested-item-id-null",
        "nested-visit-date-impossible-day",
        "complex-not-list",
    ],
)
def test_mc_rejects_invalid_value_naming_its_path(path, value, expected):
    item = load_item("rdesk-mc.json")
    target = item
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    assert errors_describe(errors_of(MedicalCentreSerializer, item)) == expected


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((), "createdAt"),
        ((), "id"),
        ((), "lead_id"),
        (("treatments", 0), "item_id"),
        (("treatments", 0), "status"),
        (("treatments", 0), "action"),
        (("labs", 0), "lab"),
        (("packets", 0), "packet_id"),
        (("complex", 0), "complex"),
    ],
    ids=lambda part: (".".join(map(str, part)) or "card") if isinstance(part, tuple) else part,
)
def test_mc_requires_field(path, field):
    item = load_item("rdesk-mc.json")
    target = item
    for key in path:
        target = target[key]
    del target[field]

    prefix = ".".join(map(str, (*path, field)))
    assert errors_describe(errors_of(MedicalCentreSerializer, item)) == (
        f"{prefix}: This field is required."
    )


# errors_describe.


def test_errors_describe_lists_every_nested_error_in_field_order():
    errors = errors_of(BookingSerializer, load_item("rdesk-booked-invalid.json"))

    assert errors_describe(errors) == (
        'status: "paid" is not a valid status; expected one of: '
        "booked, checkin, checkout, cancel, waiting. "
        "bookedAt: Datetime has wrong format. Use one of these formats instead: "
        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]. "
        "checkin: Date has wrong format. Use one of these formats instead: YYYY-MM-DD. "
        "money.total: A valid number is required. "
        "money.paid: Ensure this value is greater than or equal to 0. "
        'lead_id: Must be a positive integer; got "abc". '
        "billData.1.billSum: A valid number is required. "
        "extData.guests.0.birthday: Date has wrong format. "
        "Use one of these formats instead: YYYY-MM-DD."
    )


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ({"a": ["First.", "Second."]}, "a: First. a: Second."),
        ({"a": ["no full stop"]}, "a: no full stop."),
        ({"non_field_errors": ["Whole item is wrong."]}, "Whole item is wrong."),
        ({"money": {"non_field_errors": ["Bad money."]}}, "money: Bad money."),
        ({"items": [{}, {"x": ["Bad x."]}, {}]}, "items.1.x: Bad x."),
        ({"items": [{}, [], {"y": {"z": ["Deep."]}}]}, "items.2.y.z: Deep."),
        (["Top-level list."], "Top-level list."),
        ("Plain string", "Plain string."),
        ({}, ""),
    ],
    ids=[
        "several-messages",
        "adds-full-stop",
        "non-field-at-top",
        "non-field-nested",
        "list-index",
        "deep-path",
        "top-level-list",
        "plain-string",
        "no-errors",
    ],
)
def test_errors_describe_shapes(errors, expected):
    assert errors_describe(errors) == expected


def test_errors_describe_reads_a_top_level_type_error():
    errors = errors_of(BookingSerializer, [load_item("rdesk-booked.json")])

    assert errors_describe(errors) == "Invalid data. Expected a dictionary, but got list."


def test_validation_does_not_change_the_input():
    item = load_item("rdesk-booked.json")
    original = copy.deepcopy(item)

    validate(BookingSerializer, item)

    assert item == original
