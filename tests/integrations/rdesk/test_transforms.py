"""Named values from validated RDESK items: exact texts and sums for each fixture."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from integrations.amocrm.encoding import FieldType, encode_values
from integrations.rdesk.schemas import BookingSerializer, MedicalCentreSerializer
from integrations.rdesk.transforms import (
    BOOKED_FIELD_TYPES,
    BOOKED_SOURCES,
    MC_FIELD_TYPES,
    MC_SOURCES,
    booked_values,
    format_money,
    format_visit,
    mc_values,
    status_word,
)

from .payloads import load_item

NBSP = "\u00a0"
MOSCOW = ZoneInfo("Europe/Moscow")


def booked(fixture: str) -> dict:
    serializer = BookingSerializer(data=load_item(fixture))
    assert serializer.is_valid(), serializer.errors
    return booked_values(serializer.validated_data)


def medical(fixture: str, **kwargs) -> dict:
    serializer = MedicalCentreSerializer(data=load_item(fixture))
    assert serializer.is_valid(), serializer.errors
    return mc_values(serializer.validated_data, **kwargs)


def rub(text: str) -> str:
    """Lets expected texts be written with plain spaces where no-break spaces go."""
    return text.replace("_", NBSP)


# Tables of names.


@pytest.mark.parametrize(
    ("sources", "field_types"),
    [(BOOKED_SOURCES, BOOKED_FIELD_TYPES), (MC_SOURCES, MC_FIELD_TYPES)],
    ids=["booked", "mc"],
)
def test_every_source_has_a_suggested_field_type(sources, field_types):
    assert set(field_types) == set(sources)
    assert set(field_types.values()) <= set(FieldType.values)


def test_booked_values_produce_exactly_the_listed_names():
    assert set(booked("rdesk-booked.json")) == set(BOOKED_SOURCES)


def test_mc_values_produce_exactly_the_listed_names():
    assert set(medical("rdesk-mc.json")) == set(MC_SOURCES)


FIELD_TYPES = {"booked": BOOKED_FIELD_TYPES, "mc": MC_FIELD_TYPES}


@pytest.mark.parametrize(
    ("flow", "name", "field_type"),
    [
        ("booked", "created_at", FieldType.DATE_TIME),
        ("booked", "check_in", FieldType.DATE),
        ("booked", "paid", FieldType.NUMERIC),
        ("booked", "guests_text", FieldType.TEXTAREA),
        ("mc", "birthday", FieldType.BIRTHDAY),
        ("mc", "unpaid", FieldType.NUMERIC),
        ("mc", "complexes_text", FieldType.TEXTAREA),
    ],
)
def test_suggested_field_types(flow, name, field_type):
    assert FIELD_TYPES[flow][name] == field_type


# Booked flow.


def test_booked_sample_values():
    values = booked("rdesk-booked.json")

    assert {name: value for name, value in values.items() if not name.endswith("_text")} == {
        "created_at": datetime(2022, 9, 5, 11, 22, 33, tzinfo=UTC),
        "status": "waiting",
        "check_in": date(2026, 8, 25),
        "check_out": date(2026, 9, 5),
        "nights": 11,
        "total": Decimal("153887"),
        "paid": Decimal("61361"),
        "zdrav_id": "88888",
        "doc_num": "33333",
        "name": "Фамилия1 Имя1 Отчество1",
        "phone": "79123123123",
        "email": "mail@example.ru",
        "guests_count": 2,
    }


def test_booked_sample_guests_text_has_one_numbered_line_per_guest():
    assert booked("rdesk-booked.json")["guests_text"] == (
        "1. Фамилия1 Имя1 Отчество2 — Взрослый, Стандарт без балкона, "
        "Лечение суставов и позвоночника, счёт 77777\n"
        "2. Фамилия2 Имя2 Отчество2 — Взрослый, Стандарт без балкона, "
        "Лечение суставов и позвоночника, счёт 77777"
    )


def test_booked_sample_bills_text_shows_sum_paid_and_due():
    assert booked("rdesk-booked.json")["bills_text"] == rub(
        "Счёт 77777: сумма 147_966,30_₽, оплачено 59_000,00_₽, к оплате 88_966,30_₽"
    )


def test_booked_created_at_is_an_aware_datetime():
    assert booked("rdesk-booked.json")["created_at"].tzinfo is not None


def test_booked_minimal_sends_nothing_for_what_rdesk_left_out():
    values = booked("rdesk-booked-minimal.json")

    assert {name: values[name] for name in ("name", "phone", "email", "doc_num")} == dict.fromkeys(
        ("name", "phone", "email", "doc_num")
    )
    assert (values["guests_count"], values["guests_text"], values["bills_text"]) == (0, None, None)


def test_booked_minimal_same_day_stay_has_zero_nights():
    assert booked("rdesk-booked-minimal.json")["nights"] == 0


def test_booked_nulls_keep_text_that_is_not_an_email():
    values = booked("rdesk-booked-nulls.json")

    assert (values["name"], values["phone"], values["email"]) == (None, None, "нет почты")
    assert (values["nights"], values["total"], values["doc_num"]) == (2, Decimal("1500.50"), "A-17")


def test_booked_rich_guests_text_shows_birthday_and_skips_empty_parts():
    assert booked("rdesk-booked-rich.json")["guests_text"] == (
        "1. Иванова Мария Сергеевна — дата рождения 03.07.1985, Взрослый, Люкс, счёт A-1\n"
        "2. Иванов Пётр — Ребёнок\n"
        "3."
    )


def test_booked_rich_bills_text_groups_thousands_and_rounds_to_kopecks():
    assert booked("rdesk-booked-rich.json")["bills_text"] == rub(
        "Счёт A-1: сумма 1_234_567,89_₽, оплачено 1_000_000,00_₽, к оплате 234_567,89_₽\n"
        "Счёт: сумма 1_000,00_₽, оплачено 0,00_₽, к оплате 1_000,00_₽\n"
        "Счёт 42: сумма 100,00_₽, оплачено 150,00_₽, к оплате -50,00_₽"
    )


def test_booked_rich_keeps_exact_money_and_blank_doc_num_is_none():
    values = booked("rdesk-booked-rich.json")

    assert (values["total"], values["paid"]) == (Decimal("1234567.891"), Decimal("1000000"))
    assert (values["doc_num"], values["guests_count"], values["nights"]) == (None, 3, 14)


# Medical-centre flow.


def test_mc_sample_sums_count_only_items_not_cancelled():
    # Treatment 850 paid + packet 4000 paid + complex 8000 paid; the 1000 lab is cancelled.
    values = medical("rdesk-mc.json")

    assert (values["total"], values["paid"], values["unpaid"]) == (
        Decimal("12850"),
        Decimal("12850"),
        Decimal("0"),
    )


def test_mc_sample_counts_top_level_items_not_cancelled():
    values = medical("rdesk-mc.json")

    assert [
        values[name]
        for name in ("treatments_count", "labs_count", "packets_count", "complexes_count")
    ] == [1, 0, 1, 1]


def test_mc_sample_card_values():
    values = medical("rdesk-mc.json")

    assert {
        name: values[name]
        for name in ("created_at", "birthday", "zdrav_id", "name", "phone", "email")
    } == {
        "created_at": datetime(2020, 9, 14, 12, 18, tzinfo=UTC),
        "birthday": date(1950, 12, 1),
        "zdrav_id": "185588",
        "name": "Михайлов Иван Петрович",
        "phone": "81231234567",
        "email": None,
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "treatments_text",
            "1. Консультация кардиолога — назначено, 19.09.2020 13:00, 850,00_₽, оплачено",
        ),
        ("labs_text", "1. Тиреотропный гормон — отменено, 19.09.2020, 1_000,00_₽, не оплачено"),
        (
            "packets_text",
            "1. Check-up — 4_000,00_₽, оплачено\n"
            "   - Грязевые аппликации — назначено, 20.09.2020 15:20\n"
            "   - Грязевые аппликации 2.0 — назначено, 21.09.2020 15:20",
        ),
        (
            "complexes_text",
            "1. Комплекс Антистресс — 8_000,00_₽, оплачено\n"
            "   - Массаж ручной — выполнено, 25.09.2020 17:00\n"
            "   - Тромбиновое время — назначено, 25.09.2020",
        ),
    ],
    ids=["treatments", "labs", "packets", "complexes"],
)
def test_mc_sample_texts(name, expected):
    assert medical("rdesk-mc.json")[name] == rub(expected)


def test_mc_visit_times_follow_the_given_zone():
    values = medical("rdesk-mc.json", tz=ZoneInfo("Asia/Yekaterinburg"))

    assert values["treatments_text"] == rub(
        "1. Консультация кардиолога — назначено, 19.09.2020 15:00, 850,00_₽, оплачено"
    )


def test_mc_empty_card_has_zero_sums_and_no_texts():
    values = medical("rdesk-mc-empty.json")

    assert (values["total"], values["paid"], values["unpaid"]) == (0, 0, 0)
    assert [values[name] for name in MC_SOURCES if name.endswith("_count")] == [0, 0, 0, 0]
    assert [values[name] for name in MC_SOURCES if name.endswith("_text")] == [None] * 4
    assert (values["birthday"], values["email"]) == (None, None)


def test_mc_edge_sums_skip_every_cancelled_spelling_and_count_null_prices_as_zero():
    # Live: 0 (null price, paid) + 250.5 + 300 (no paid flag) + lab 600 (paid) + packet 0.
    # Cancelled: treatment 700 "cancelled", lab 400 "canceled", packet 5000 "cancel".
    # The 999 nested in a packet is paid through the packet, so it is not added.
    values = medical("rdesk-mc-edge.json")

    assert (values["total"], values["paid"], values["unpaid"]) == (
        Decimal("1150.5"),
        Decimal("600"),
        Decimal("550.5"),
    )


def test_mc_edge_counts_unknown_statuses_as_live():
    values = medical("rdesk-mc-edge.json")

    assert [
        values[name]
        for name in ("treatments_count", "labs_count", "packets_count", "complexes_count")
    ] == [3, 1, 1, 0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "treatments_text",
            "1. Без цены — назначено, оплачено\n"
            "2. Новый статус — planned, 02.03.2021 09:30, 250,50_₽, не оплачено\n"
            "3. Отменённая — отменено, 03.03.2021, 700,00_₽, оплачено\n"
            "4. Без оплаты — выполнено, 300,00_₽",
        ),
        (
            "labs_text",
            "1. Анализ отменён — отменено, 04.03.2021, 400,00_₽, не оплачено\n"
            "2. Анализ — выполнено, 04.03.2021, 600,00_₽, оплачено",
        ),
        (
            "packets_text",
            "1. Пакет отменён — отменено, 5_000,00_₽, оплачено\n"
            "2. Пакет без цены\n"
            "   - Вложенная с ценой — назначено, 999,00_₽, оплачено",
        ),
        ("complexes_text", None),
    ],
    ids=["treatments", "labs", "packets", "complexes"],
)
def test_mc_edge_texts_list_cancelled_items_and_leave_out_what_is_missing(name, expected):
    assert medical("rdesk-mc-edge.json")[name] == (expected and rub(expected))


def test_mc_edge_blank_birthday_and_naive_created_at_in_moscow():
    values = medical("rdesk-mc-edge.json")

    assert (values["birthday"], values["created_at"]) == (
        None,
        datetime(2021, 3, 1, 10, 0, tzinfo=MOSCOW),
    )


# Formatting pieces.


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("0"), "0,00_₽"),
        (Decimal("850"), "850,00_₽"),
        (Decimal("999.99"), "999,99_₽"),
        (Decimal("1000"), "1_000,00_₽"),
        (Decimal("147966.3"), "147_966,30_₽"),
        (Decimal("1234567.891"), "1_234_567,89_₽"),
        (Decimal("0.005"), "0,01_₽"),
        (Decimal("-88966.3"), "-88_966,30_₽"),
        (Decimal("-0.001"), "0,00_₽"),
        (Decimal("1E+3"), "1_000,00_₽"),
    ],
    ids=[
        "zero",
        "hundreds",
        "kopecks",
        "thousand",
        "sample-bill",
        "millions",
        "rounds-half-up",
        "negative",
        "negative-rounds-to-zero",
        "exponent",
    ],
)
def test_format_money_writes_roubles_the_russian_way(amount, expected):
    assert format_money(amount) == rub(expected)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (date(2020, 9, 19), "19.09.2020"),
        (datetime(2020, 9, 19, 10, 0, tzinfo=UTC), "19.09.2020 13:00"),
        (datetime(2020, 9, 19, 22, 30, tzinfo=UTC), "20.09.2020 01:30"),
        (datetime(2020, 9, 19, 0, 0, tzinfo=MOSCOW), "19.09.2020 00:00"),
    ],
    ids=["day", "moment-in-moscow", "moment-crosses-midnight", "midnight-keeps-time"],
)
def test_format_visit(moment, expected):
    assert format_visit(moment, MOSCOW) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("set", "назначено"),
        ("done", "выполнено"),
        ("cancel", "отменено"),
        ("cancelled", "отменено"),
        ("canceled", "отменено"),
        ("DONE", "выполнено"),
        ("planned", "planned"),
        (" waiting ", "waiting"),
        ("", ""),
    ],
    ids=[
        "set",
        "done",
        "cancel",
        "cancelled",
        "canceled",
        "any-case",
        "unknown",
        "unknown-stripped",
        "blank",
    ],
)
def test_status_word(status, expected):
    assert status_word(status) == expected


@pytest.mark.parametrize(
    ("fixture", "values_of", "field_types"),
    [
        ("rdesk-booked.json", booked, BOOKED_FIELD_TYPES),
        ("rdesk-booked-minimal.json", booked, BOOKED_FIELD_TYPES),
        ("rdesk-booked-rich.json", booked, BOOKED_FIELD_TYPES),
        ("rdesk-mc.json", medical, MC_FIELD_TYPES),
        ("rdesk-mc-edge.json", medical, MC_FIELD_TYPES),
        ("rdesk-mc-empty.json", medical, MC_FIELD_TYPES),
    ],
    ids=["booked", "booked-minimal", "booked-rich", "mc", "mc-edge", "mc-empty"],
)
def test_every_value_encodes_as_its_suggested_field_type(fixture, values_of, field_types):
    for name, value in values_of(fixture).items():
        encode_values(field_types[name], value, tz=MOSCOW)
