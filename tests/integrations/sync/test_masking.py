"""Masking guests' personal and medical data, value kind by value kind, on recorded payloads."""

import json
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.masking import (
    UNREADABLE_BODY,
    Masker,
    birthday_mask,
    email_mask,
    name_mask,
    phone_mask,
)
from tests.conftest import fixture_bytes
from tests.integrations.rdesk.payloads import load_item

# What the reference on 152-FZ lists as personal in RDESK payloads, by key.
PERSONAL_KEYS = {"name", "phone", "email", "fio", "birthday", "cure", "uid"}
HEALTH_KEYS = {"action", "lab", "packet", "complex"}


def personal_strings(payload) -> set[str]:
    """Every personal value of a payload, each word of a name, and other spellings of them.

    Other test modules assert that none of these reach a page or a file.
    """
    found = set()

    def walk(value, key=None):
        if isinstance(value, dict):
            for inner_key, inner in value.items():
                walk(inner, inner_key)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
        elif key in PERSONAL_KEYS | HEALTH_KEYS and isinstance(value, str) and value.strip():
            text = value.strip()
            found.add(text)
            if key in {"name", "fio"}:
                found.update(word for word in text.split() if len(word) >= 4)
            if key == "birthday":
                year, month, day = text.split("-")
                found.add(f"{day}.{month}.{year}")

    walk(payload)
    return found


def leaked_in(text: str, payload) -> set[str]:
    """The personal values of ``payload`` that ``text`` still shows."""
    return {value for value in personal_strings(payload) if value in text}


def named_value_texts(kind: str, item: dict) -> list[str]:
    """The named values a flow kind computes from a payload, as texts."""
    spec = FLOW_KINDS[kind]
    serializer = spec.schema(data=item)
    assert serializer.is_valid(), serializer.errors
    values = spec.values_for(serializer.validated_data, tz=ZoneInfo("Europe/Moscow"))
    return [str(value) for value in values.values() if value is not None]


@pytest.fixture
def booking() -> dict:
    return load_item("rdesk-booked.json")


@pytest.fixture
def card() -> dict:
    return load_item("rdesk-mc.json")


# --- one value ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Фамилия Имя", "Ф*** И***"),
        ("Михайлов Иван Петрович", "М*** И*** П***"),
        ("Иванов-Петров Пётр", "И***-П*** П***"),
    ],
)
def test_a_name_keeps_only_the_first_letter_of_each_word(name, masked):
    assert name_mask(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("79123123123", "+7 *** *** 31 23"),
        ("81231234567", "+7 *** *** 45 67"),
        ("+7 (912) 312-31-23", "+7 *** *** 31 23"),
        ("4951234", "*** 12 34"),
        ("12", "***"),
    ],
)
def test_a_phone_keeps_only_its_last_four_digits(phone, masked):
    assert phone_mask(phone) == masked


def test_an_email_keeps_the_first_letters_and_the_top_level_domain():
    assert email_mask("mail@example.ru") == "m***@e***.ru"


def test_a_birthday_hides_every_digit():
    assert birthday_mask("1950-12-01") == "****-**-**"


# --- booking payloads --------------------------------------------------------------------


def test_booking_client_is_masked_by_key(booking):
    masked = Masker(booking).payload()

    assert masked["name"] == "Ф*** И*** О***"
    assert masked["phone"] == "+7 *** *** 31 23"
    assert masked["email"] == "m***@e***.ru"


def test_booking_guests_names_treatments_and_ids_are_masked(booking):
    guests = Masker(booking).payload()["extData"]["guests"]

    assert [guest["fio"] for guest in guests] == ["Ф*** И*** О***", "Ф*** И*** О***"]
    assert {guest["cure"] for guest in guests} == {"***"}
    assert {guest["uid"] for guest in guests} == {"***"}


def test_booking_guest_birthday_is_masked():
    rich = load_item("rdesk-booked-rich.json")

    guests = Masker(rich).payload()["extData"]["guests"]

    assert guests[0]["birthday"] == "****-**-**"
    assert guests[1]["birthday"] is None  # nothing to hide stays as it came


def test_booking_keeps_what_is_not_personal(booking):
    masked = Masker(booking).payload()

    assert (masked["id"], masked["lead_id"], masked["status"]) == (88888, "23392663", "waiting")
    assert masked["money"] == booking["money"]
    assert masked["billData"] == booking["billData"]
    assert masked["extData"]["guests"][0]["roomCategory"] == "Стандарт без балкона"


def test_masking_leaves_the_payload_itself_unchanged(booking):
    original = json.loads(json.dumps(booking))

    Masker(booking).payload()

    assert booking == original


# --- medical-centre payloads -------------------------------------------------------------


def test_mc_client_name_phone_and_birthday_are_masked(card):
    masked = Masker(card).payload()

    assert masked["name"] == "М*** И*** П***"
    assert masked["phone"] == "+7 *** *** 45 67"
    assert masked["birthday"] == "****-**-**"
    assert masked["email"] == ""  # empty stays empty


def test_mc_treatments_and_labs_are_masked(card):
    masked = Masker(card).payload()

    assert masked["treatments"][0]["action"] == "***"
    assert masked["labs"][0]["lab"] == "***"
    assert masked["treatments"][0]["price"] == 850
    assert masked["labs"][0]["status"] == "cancel"


def test_mc_packets_and_their_treatments_are_masked(card):
    packet = Masker(card).payload()["packets"][0]

    assert packet["packet"] == "***"
    assert [item["action"] for item in packet["treatments"]] == ["***", "***"]
    assert packet["packet_id"] == 4321


def test_mc_complex_treatments_and_its_labs_are_masked(card):
    complex_ = Masker(card).payload()["complex"][0]

    assert complex_["complex"] == "***"
    assert complex_["treatments"][0]["action"] == "***"
    assert complex_["labs"][0]["lab"] == "***"
    assert complex_["labs"][0]["visit_date"] == "2020-09-25"


def test_mc_edge_payload_with_null_treatments_is_masked():
    edge = load_item("rdesk-mc-edge.json")

    masked = Masker(edge).payload()

    assert masked["packets"][0]["treatments"] is None
    assert masked["packets"][1]["treatments"][0]["action"] == "***"
    assert leaked_in(json.dumps(masked, ensure_ascii=False), edge) == set()


# --- texts derived from a payload --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fixture"),
    [
        ("booked", "rdesk-booked.json"),
        ("booked", "rdesk-booked-rich.json"),
        ("mc", "rdesk-mc.json"),
        ("mc", "rdesk-mc-edge.json"),
    ],
)
def test_named_values_keep_no_personal_value(kind, fixture):
    item = load_item(fixture)
    masker = Masker(item)

    texts = [masker.text(text) for text in named_value_texts(kind, item)]

    assert leaked_in("\n".join(texts), item) == set()


def test_a_birthday_written_the_russian_way_in_a_text_is_masked():
    rich = load_item("rdesk-booked-rich.json")

    assert Masker(rich).text("дата рождения 03.07.1985") == "дата рождения **.**.****"


def test_a_phone_as_bare_digits_in_a_text_is_masked():
    item = {"phone": "+7 (912) 312-31-23"}

    assert Masker(item).text("sent 79123123123") == "sent +7 *** *** 31 23"


def test_a_json_text_with_unicode_escapes_is_masked(booking):
    escaped = json.dumps({"detail": f"Lead name {booking['name']} refused"})  # ASCII, \u escapes

    masked = Masker(booking).text(escaped)

    assert json.dumps(booking["name"])[1:-1] not in masked
    assert json.loads(masked)["detail"] == "Lead name Ф*** И*** О*** refused"


def test_raw_body_is_masked_even_where_it_spells_letters_as_escapes(booking):
    raw = json.dumps([booking])  # what a sender writing ASCII-only JSON would post

    shown = Masker(booking).raw(raw)

    assert leaked_in(shown, booking) == set()
    assert "Стандарт без балкона" in shown  # re-shown readable, not escaped


@pytest.mark.parametrize("name", ["rdesk-booked.json", "rdesk-mc.json"])
def test_raw_body_of_a_recorded_sample_is_masked(name):
    raw = fixture_bytes(f"rdesk/{name}").decode()

    shown = Masker.for_raw(_User(allowed=False), raw).raw(raw)

    assert leaked_in(shown, load_item(name)) == set()


def test_a_raw_body_that_is_not_json_is_hidden_when_masked():
    assert Masker(None).raw("name=Иванов") == UNREADABLE_BODY


# --- who sees what -----------------------------------------------------------------------


class _User:
    def __init__(self, *, allowed: bool):
        self.allowed = allowed

    def has_perm(self, permission: str) -> bool:
        return self.allowed and permission == "sync.view_personal_data"


def test_a_user_allowed_to_see_personal_data_sees_it_all(booking):
    masker = Masker.for_user(_User(allowed=True), booking)

    assert masker.payload() == booking
    assert masker.text(booking["name"]) == booking["name"]
    assert masker.raw("not json") == "not json"


def test_a_user_without_the_right_sees_it_masked(booking):
    masker = Masker.for_user(_User(allowed=False), booking)

    assert masker.enabled
    assert masker.payload()["name"] == "Ф*** И*** О***"
