"""lead_update_build: named values and mappings in, the body of a lead PATCH out."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.mapping import Mapping, MappingError, lead_update_build

MOSCOW = ZoneInfo("Europe/Moscow")


def build(values: dict, mappings=(), *, price_source: str = "", skip=frozenset()) -> dict:
    return lead_update_build(
        values=values,
        mappings=list(mappings),
        price_source=price_source,
        tz=MOSCOW,
        skip_field_ids=frozenset(skip),
    )


@pytest.mark.parametrize(
    ("total", "price"),
    [
        (Decimal("153887"), 153887),
        (Decimal("1500.50"), 1501),
        (Decimal("1500.49"), 1500),
        (Decimal("0.5"), 1),
        (Decimal("99.999"), 100),
        (Decimal("0"), 0),
        (1500.5, 1501),
        (42, 42),
        ("2500.5", 2501),
    ],
)
def test_price_is_rounded_half_up_to_whole_units(total, price):
    assert build({"total": total}, price_source="total") == {"price": price}


def test_price_is_left_out_when_its_value_is_empty():
    assert build({"total": None}, price_source="total") == {}


def test_price_is_left_alone_when_the_flow_has_no_price_source():
    assert build({"total": Decimal("100")}, price_source="") == {}


@pytest.mark.parametrize("total", ["много", "", True, "NaN", "Infinity", Decimal("-Infinity")])
def test_price_that_is_not_a_finite_number_is_a_mapping_error(total):
    with pytest.raises(MappingError, match=r"^price: .* is not a number$"):
        build({"total": total}, price_source="total")


def test_unknown_price_source_is_a_mapping_error():
    with pytest.raises(MappingError, match="price source 'sum' is not a value of this flow"):
        build({"total": 1}, price_source="sum")


@pytest.mark.parametrize(
    ("field_type", "value", "values"),
    [
        ("text", "  waiting ", [{"value": "waiting"}]),
        ("textarea", "1. Guest\n2. Guest", [{"value": "1. Guest\n2. Guest"}]),
        ("numeric", Decimal("61361.50"), [{"value": "61361.5"}]),
        ("numeric", 0, [{"value": "0"}]),
        ("date", date(2026, 8, 25), [{"value": "2026-08-25T00:00:00+03:00"}]),
        (
            "date_time",
            datetime(2022, 9, 5, 11, 22, 33, tzinfo=UTC),
            [{"value": "2022-09-05T14:22:33+03:00"}],
        ),
        ("birthday", date(1950, 12, 1), [{"value": "1950-12-01T00:00:00+03:00"}]),
        ("checkbox", True, [{"value": True}]),
        ("multiselect", ["a", "", "b"], [{"value": "a"}, {"value": "b"}]),
    ],
)
def test_mapped_value_is_written_in_its_amocrm_format(field_type, value, values):
    update = build({"value": value}, [Mapping("value", 111, field_type)])

    assert update == {"custom_fields_values": [{"field_id": 111, "values": values}]}


@pytest.mark.parametrize("empty", [None, "", "   ", [], ["", None]])
def test_empty_value_is_left_out_rather_than_clearing_the_field(empty):
    update = build(
        {"paid": Decimal("10"), "doc_num": empty},
        [Mapping("doc_num", 1305107, "text"), Mapping("paid", 1305167, "numeric")],
    )

    assert update == {"custom_fields_values": [{"field_id": 1305167, "values": [{"value": "10"}]}]}


def test_no_custom_fields_key_when_every_mapped_value_is_empty():
    update = build(
        {"total": Decimal("5"), "doc_num": None},
        [Mapping("doc_num", 1305107, "text")],
        price_source="total",
    )

    assert update == {"price": 5}


def test_nothing_to_send_gives_an_empty_update():
    assert build({"doc_num": None}, [Mapping("doc_num", 1305107, "text")]) == {}


def test_fields_are_sent_in_mapping_order():
    update = build(
        {"a": "1", "b": "2", "c": "3"},
        [Mapping("c", 3, "text"), Mapping("a", 1, "text"), Mapping("b", 2, "text")],
    )

    assert [field["field_id"] for field in update["custom_fields_values"]] == [3, 1, 2]


def test_one_value_may_feed_several_fields():
    update = build(
        {"paid": Decimal("7")}, [Mapping("paid", 1, "numeric"), Mapping("paid", 2, "text")]
    )

    assert update["custom_fields_values"] == [
        {"field_id": 1, "values": [{"value": "7"}]},
        {"field_id": 2, "values": [{"value": "7"}]},
    ]


def test_unknown_mapping_source_is_a_mapping_error():
    with pytest.raises(MappingError, match="mapping source 'nights' is not a value of this flow"):
        build({"paid": 1}, [Mapping("nights", 1, "numeric")])


@pytest.mark.parametrize(
    ("mapping", "value", "message"),
    [
        (
            Mapping("status", 1304923, "checkbox"),
            "waiting",
            "status -> field 1304923 (checkbox): 'waiting' is not a yes/no value",
        ),
        (
            Mapping("paid", 1305167, "numeric"),
            "много",
            "paid -> field 1305167 (numeric): 'много' is not a number",
        ),
        (
            Mapping("check_in", 1305059, "date"),
            "25.08.2026",
            "check_in -> field 1305059 (date): '25.08.2026' is not a date",
        ),
        (
            Mapping("status", 1304923, "colour"),
            "waiting",
            "status -> field 1304923 (colour): unknown AmoCRM field type 'colour'",
        ),
    ],
)
def test_value_that_cannot_be_encoded_names_its_source_and_field(mapping, value, message):
    with pytest.raises(MappingError) as error:
        build({mapping.source: value}, [mapping])

    assert str(error.value) == message


def test_skipped_field_ids_are_never_sent():
    update = build(
        {"paid": Decimal("1"), "zdrav_id": "88888"},
        [Mapping("paid", 1305167, "numeric"), Mapping("zdrav_id", 1305111, "text")],
        skip={1305167},
    )

    assert update == {
        "custom_fields_values": [{"field_id": 1305111, "values": [{"value": "88888"}]}]
    }


def test_skipped_field_is_not_encoded_so_its_bad_value_does_no_harm():
    update = build({"status": "waiting"}, [Mapping("status", 1304923, "checkbox")], skip={1304923})

    assert update == {}
