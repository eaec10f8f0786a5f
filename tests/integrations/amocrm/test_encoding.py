"""Encoders from Python values to AmoCRM custom field values, one table per field type."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from integrations.amocrm.encoding import EncodingError, FieldType, encode_field, encode_values

MOSCOW = ZoneInfo("Europe/Moscow")


def encode(field_type, value):
    return encode_values(field_type, value, tz=MOSCOW)


def test_field_type_lists_every_amocrm_type_the_hub_writes():
    assert set(FieldType.values) == {
        "text",
        "textarea",
        "numeric",
        "date",
        "date_time",
        "birthday",
        "select",
        "multiselect",
        "checkbox",
        "url",
        "price",
    }


def test_field_type_labels_are_english_words():
    assert FieldType.DATE_TIME.label == "Date and time"


@pytest.mark.parametrize("field_type", FieldType.values)
@pytest.mark.parametrize(
    "value",
    [None, "", "   ", [], ["", None]],
    ids=["none", "blank", "spaces", "empty-list", "empty-items"],
)
def test_empty_value_means_leave_the_field_out(field_type, value):
    assert encode(field_type, value) is None


@pytest.mark.parametrize("field_type", ["multitext", "", "TEXT", None])
def test_unknown_field_type_is_an_error(field_type):
    with pytest.raises(EncodingError, match="unknown AmoCRM field type"):
        encode(field_type, "x")


def test_unknown_field_type_is_an_error_even_for_an_empty_value():
    with pytest.raises(EncodingError):
        encode("multitext", None)


@pytest.mark.parametrize("field_type", ["text", "textarea", "url"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Иванов Иван", "Иванов Иван"),
        ("  padded  ", "padded"),
        (88888, "88888"),
        (Decimal("147966.3"), "147966.3"),
        (["first", "second"], "first\nsecond"),
        (["first", "", None, "third"], "first\nthird"),
        ("line one\nline two", "line one\nline two"),
    ],
    ids=["string", "stripped", "int", "decimal", "list-joined", "list-skips-empty", "multiline"],
)
def test_text_types_send_one_string(field_type, value, expected):
    assert encode(field_type, value) == [{"value": expected}]


@pytest.mark.parametrize("value", [{"a": 1}, [{"a": 1}]], ids=["dict", "list-of-dicts"])
def test_text_rejects_structures(value):
    with pytest.raises(EncodingError, match="is not text"):
        encode("text", value)


@pytest.mark.parametrize("field_type", ["numeric", "price"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (61361, "61361"),
        (0, "0"),
        (-15, "-15"),
        (Decimal("147966.30"), "147966.3"),
        (Decimal("61361.00"), "61361"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.00"), "0"),
        (147966.3, "147966.3"),
        (61361.0, "61361"),
        (1e20, "100000000000000000000"),
        ("147966.3", "147966.3"),
        (" 59000 ", "59000"),
        ("59000.000", "59000"),
        ("0.05", "0.05"),
        ("1e3", "1000"),
    ],
    ids=[
        "int",
        "zero",
        "negative",
        "decimal-trailing-zero",
        "decimal-whole",
        "decimal-exponent",
        "negative-zero",
        "float",
        "float-whole",
        "float-large",
        "string",
        "string-padded",
        "string-trailing-zeros",
        "string-small",
        "string-exponent",
    ],
)
def test_numbers_are_sent_as_plain_decimal_strings(field_type, value, expected):
    assert encode(field_type, value) == [{"value": expected}]


@pytest.mark.parametrize("field_type", ["numeric", "price"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a number"),
        ("12,5", "'12,5' is not a number"),
        (True, "True is not a number"),
        (False, "False is not a number"),
        ("NaN", "'NaN' is not a number"),
        (float("inf"), "inf is not a number"),
        ([1, 2], r"\[1, 2\] is not a number"),
        (date(2026, 1, 1), "is not a number"),
    ],
    ids=["word", "comma-decimal", "true", "false", "nan", "infinity", "list", "date"],
)
def test_numbers_reject_what_is_not_a_number(field_type, value, message):
    with pytest.raises(EncodingError, match=message):
        encode(field_type, value)


@pytest.mark.parametrize("field_type", ["date", "birthday"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 8, 25), "2026-08-25T00:00:00+03:00"),
        ("2026-08-25", "2026-08-25T00:00:00+03:00"),
        (datetime(2026, 8, 25, 10, 30, tzinfo=MOSCOW), "2026-08-25T00:00:00+03:00"),
        # 22:30 UTC is already the next day in Moscow.
        (datetime(2026, 8, 24, 22, 30, tzinfo=UTC), "2026-08-25T00:00:00+03:00"),
        ("2026-08-24T22:30:00Z", "2026-08-25T00:00:00+03:00"),
        (datetime(2026, 8, 25, 23, 59), "2026-08-25T00:00:00+03:00"),
        ("1950-12-01", "1950-12-01T00:00:00+03:00"),
    ],
    ids=[
        "date",
        "iso-date",
        "aware-datetime",
        "utc-datetime-next-day",
        "iso-datetime-z",
        "naive-datetime-local",
        "old-birthday",
    ],
)
def test_dates_are_sent_as_midnight_in_the_account_zone(field_type, value, expected):
    assert encode(field_type, value) == [{"value": expected}]


def test_date_midnight_uses_the_given_zone():
    assert encode_values("date", date(2026, 8, 25), tz=ZoneInfo("Asia/Yekaterinburg")) == [
        {"value": "2026-08-25T00:00:00+05:00"}
    ]


@pytest.mark.parametrize("field_type", ["date", "birthday"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("25.08.2026", "'25.08.2026' is not a date"),
        ("2026-13-01", "'2026-13-01' is not a date"),
        (20260825, "20260825 is not a date"),
        (True, "True is not a date"),
    ],
    ids=["russian-format", "month-13", "int", "bool"],
)
def test_dates_reject_what_is_not_a_date(field_type, value, message):
    with pytest.raises(EncodingError, match=message):
        encode(field_type, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2022, 9, 5, 11, 22, 33, tzinfo=UTC), "2022-09-05T14:22:33+03:00"),
        ("2022-09-05T11:22:33.000Z", "2022-09-05T14:22:33+03:00"),
        (
            datetime(2022, 9, 5, 11, 22, 33, tzinfo=timezone(timedelta(hours=5))),
            "2022-09-05T09:22:33+03:00",
        ),
        (datetime(2022, 9, 5, 11, 22, 33), "2022-09-05T11:22:33+03:00"),
        ("2022-09-05T11:22:33", "2022-09-05T11:22:33+03:00"),
        (datetime(2022, 9, 5, 11, 22, 33, 999999, tzinfo=MOSCOW), "2022-09-05T11:22:33+03:00"),
        (date(2022, 9, 5), "2022-09-05T00:00:00+03:00"),
        ("2022-09-05", "2022-09-05T00:00:00+03:00"),
    ],
    ids=[
        "utc-datetime",
        "iso-z-with-millis",
        "other-offset",
        "naive-is-local",
        "iso-naive-is-local",
        "microseconds-dropped",
        "date-is-midnight",
        "iso-date-is-midnight",
    ],
)
def test_date_time_is_sent_in_the_account_zone_with_seconds(value, expected):
    assert encode("date_time", value) == [{"value": expected}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "'yesterday' is not a date and time"),
        (1662376953, "1662376953 is not a date and time"),
    ],
    ids=["word", "unix-timestamp"],
)
def test_date_time_rejects_what_is_not_a_moment(value, message):
    with pytest.raises(EncodingError, match=message):
        encode("date_time", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        (" yes ", True),
        ("No", False),
    ],
    ids=[
        "true",
        "false",
        "one",
        "zero",
        "word-true",
        "word-false",
        "digit-1",
        "digit-0",
        "yes",
        "no",
    ],
)
def test_checkbox_sends_a_boolean(value, expected):
    assert encode("checkbox", value) == [{"value": expected}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("maybe", "'maybe' is not a yes/no value"),
        (2, "2 is not a yes/no value"),
        (1.0, "1.0 is not a yes/no value"),
    ],
    ids=["word", "two", "float"],
)
def test_checkbox_rejects_other_values(value, message):
    with pytest.raises(EncodingError, match=message):
        encode("checkbox", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("waiting", "waiting"), (" Взрослый ", "Взрослый"), (3, "3")],
    ids=["string", "stripped", "number"],
)
def test_select_sends_one_option_by_its_text(value, expected):
    assert encode("select", value) == [{"value": expected}]


def test_select_rejects_several_values():
    with pytest.raises(EncodingError, match="a select field takes one"):
        encode("select", ["a", "b"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["Люкс", "Стандарт"], [{"value": "Люкс"}, {"value": "Стандарт"}]),
        ("Люкс", [{"value": "Люкс"}]),
        (("a", "", None, "b"), [{"value": "a"}, {"value": "b"}]),
    ],
    ids=["list", "single-string", "skips-empty-items"],
)
def test_multiselect_sends_one_entry_per_option(value, expected):
    assert encode("multiselect", value) == expected


def test_multiselect_rejects_structured_options():
    with pytest.raises(EncodingError, match="is not text"):
        encode("multiselect", [{"enum_id": 1}])


def test_encoders_accept_field_type_members():
    assert encode(FieldType.NUMERIC, 5) == [{"value": "5"}]


def test_encode_field_wraps_values_with_the_field_id():
    assert encode_field(1234, "numeric", Decimal("61361"), tz=MOSCOW) == {
        "field_id": 1234,
        "values": [{"value": "61361"}],
    }


def test_encode_field_gives_none_for_an_empty_value():
    assert encode_field(1234, "text", "", tz=MOSCOW) is None


def test_encode_field_keeps_false_checkbox():
    assert encode_field(7, "checkbox", False, tz=MOSCOW) == {
        "field_id": 7,
        "values": [{"value": False}],
    }


def test_encoding_error_is_a_value_error():
    assert issubclass(EncodingError, ValueError)
