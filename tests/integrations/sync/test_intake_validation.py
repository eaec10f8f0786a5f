"""Invalid items are refused at the door: 422 per item and field, stored, no values echoed."""

import json
import logging

import pytest

from integrations.sync.models import EventStatus, InboundEvent
from tests.conftest import fixture_bytes, fixture_json

BOOKED = "/zdrav/booked"
MC = "/zdrav/mc"
REQUIRED = ["This field is required."]


def post(client, body: bytes, *, path: str = BOOKED, **kwargs):
    return client.post(path, body, content_type="application/json", **kwargs)


def only_event() -> InboundEvent:
    events = list(InboundEvent.objects.all())
    assert len(events) == 1, f"expected one stored event, found {len(events)}"
    return events[0]


def test_an_item_missing_required_fields_is_answered_422_listing_each_field(client, db):
    response = post(client, fixture_bytes("rdesk/intake/booked-missing-fields.json"))

    assert response.status_code == 422
    assert response.json() == {
        "status": "error",
        "error": "invalid_items",
        "detail": "1 of 1 item is not valid; nothing was accepted. "
        "Each item's errors are listed by field.",
        "items": [
            {
                "index": 0,
                "errors": {
                    "bookedAt": REQUIRED,
                    "checkin": REQUIRED,
                    "checkout": REQUIRED,
                    "money": REQUIRED,
                    "id": REQUIRED,
                    "lead_id": REQUIRED,
                },
            }
        ],
    }


def test_only_the_invalid_item_is_listed_with_its_nested_field_path(client, db):
    response = post(client, fixture_bytes("rdesk/intake/booked-second-item-invalid.json"))

    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("1 of 2 items is not valid; nothing was accepted.")
    assert body["items"] == [
        {"index": 1, "errors": {"billData.0.billSum": ["A valid number is required."]}}
    ]


def test_an_invalid_status_names_the_allowed_ones(client, db):
    response = post(client, fixture_bytes("rdesk/intake/booked-unknown-status.json"))

    assert response.json()["items"] == [
        {
            "index": 0,
            "errors": {
                "status": [
                    "Not a valid status; expected one of: booked, checkin, checkout, cancel, "
                    "waiting."
                ]
            },
        }
    ]


def test_a_check_out_before_check_in_is_reported_on_the_check_out(client, db):
    item = fixture_json("rdesk/intake/booked-object.json") | {"checkout": "2026-01-01"}

    response = post(client, json.dumps(item).encode())

    assert response.json()["items"] == [
        {
            "index": 0,
            "errors": {"checkout": ["Check-out date must not be before the check-in date."]},
        }
    ]


def test_medical_centre_items_are_judged_by_the_medical_centre_schema(client, db):
    response = post(client, fixture_bytes("rdesk/rdesk-mc-invalid.json"), path=MC)

    assert response.status_code == 422
    assert response.json()["items"][0]["errors"] == {
        "createdAt": [
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
        ],
        "lead_id": ["Must be a positive integer."],
        "treatments.0.visit_date": ["Use a date (YYYY-MM-DD) or an ISO 8601 date and time."],
        "treatments.0.price": ["A valid number is required."],
        "labs.0.lab_item_id": REQUIRED,
        "packets": ['Expected a list of items but got type "dict".'],
    }


def test_a_body_with_an_invalid_item_is_stored_whole_as_one_rejected_event(
    client, db, enqueued, django_capture_on_commit_callbacks
):
    body = fixture_bytes("rdesk/intake/booked-second-item-invalid.json")

    with django_capture_on_commit_callbacks(execute=True):
        post(client, body)

    event = only_event()
    assert event.status == EventStatus.REJECTED
    assert bytes(event.raw_body) == body
    assert event.payload == json.loads(body)
    assert event.last_error == (
        "1 of 2 items is not valid; nothing was accepted. Each item's errors are listed by "
        "field.\nItem 1: billData.0.billSum: A valid number is required."
    )
    assert event.next_attempt_at is None
    assert enqueued.call_count == 0


def test_personal_values_are_not_echoed_in_the_answer_the_stored_reason_or_the_logs(
    client, db, caplog
):
    caplog.set_level(logging.DEBUG)

    response = post(client, fixture_bytes("rdesk/intake/booked-personal-values-invalid.json"))

    assert response.json()["items"][0]["errors"] == {
        "status": [
            "Not a valid status; expected one of: booked, checkin, checkout, cancel, waiting."
        ],
        "phone": ["Not a valid string."],
        "lead_id": ["Must be a positive integer."],
        "extData.guests.0.birthday": [
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
        ],
    }
    # Every field of each record but the numbers Python stamps on it (a thread id or a
    # timestamp may hold "555" by chance).
    stamps = {"created", "msecs", "relativeCreated", "thread", "process", "lineno", "levelno"}
    logged = " ".join(
        f"{record.getMessage()} {[v for k, v in record.__dict__.items() if k not in stamps]}"
        for record in caplog.records
    )
    for seen in (response.content.decode(), only_event().last_error, logged):
        for value in ("Иванова", "912", "555", "1950", "марта"):
            assert value not in seen


def test_the_answer_is_english_for_a_caller_with_a_russian_language_cookie(client, db):
    client.cookies["django_language"] = "ru"

    response = post(client, fixture_bytes("rdesk/intake/booked-missing-fields.json"))

    assert response.headers["Content-Language"] == "en"
    assert response.json()["items"][0]["errors"]["id"] == REQUIRED
    assert "This field is required." in only_event().last_error


def test_the_stored_reason_lists_at_most_twenty_items(client, db):
    item = fixture_json("rdesk/intake/booked-missing-fields.json")[0]

    response = post(client, json.dumps([item] * 25).encode())

    assert len(response.json()["items"]) == 25
    reason = only_event().last_error
    assert reason.count("\nItem ") == 20
    assert reason.endswith("\n... and 5 more invalid items.")


# --- the item limit -------------------------------------------------------------------


def test_more_items_than_the_limit_are_answered_413_and_stored_as_rejected(client, db, settings):
    settings.HUB_MAX_ITEMS_PER_REQUEST = 1
    body = fixture_bytes("rdesk/intake/booked-batch.json")

    response = post(client, body)

    assert response.status_code == 413
    detail = "The body holds 2 items; the limit is 1 per request. Send them in smaller batches."
    assert response.json() == {"status": "error", "error": "too_many_items", "detail": detail}
    event = only_event()
    assert (event.status, event.last_error) == (EventStatus.REJECTED, detail)
    assert bytes(event.raw_body) == body


def test_as_many_items_as_the_limit_are_accepted(client, db, settings):
    settings.HUB_MAX_ITEMS_PER_REQUEST = 2

    response = post(client, fixture_bytes("rdesk/intake/booked-batch.json"))

    assert response.status_code == 200
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 2


def test_the_default_limit_is_500_items():
    from hub import settings

    assert settings.HUB_MAX_ITEMS_PER_REQUEST == 500


# --- the cost of an accepted request ----------------------------------------------------


@pytest.mark.postgres
def test_an_accepted_request_is_one_statement_inserting_all_items(client, db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = fixture_bytes("rdesk/intake/booked-batch.json")
    post(client, body)  # the flows are read once per process, then kept
    InboundEvent.objects.all().delete()

    with CaptureQueriesContext(connection) as queries:
        response = post(client, body)

    assert response.status_code == 200
    # One round trip: the INSERT of both items, and the read of the account's nudge mark.
    # (The test client takes the admin's middleware too, whose time zone query is not the
    # intake's: production serves the intake's paths without it, hub/wsgi.py.)
    intake = [q["sql"] for q in queries if "sync_" in q["sql"]]
    assert len(intake) == 1
    assert intake[0].startswith('WITH new AS (INSERT INTO "sync_inboundevent"')
    assert InboundEvent.objects.count() == 2


# --- bodies Python parses but PostgreSQL cannot store ------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'[{"id": NaN}]', "Body is not valid JSON: NaN is not a JSON number."),
        (b"[1e400]", "Body is not valid JSON: a number is too large to store."),
        (b"[" * 3000, "Body is not valid JSON: it is nested too deeply."),
        (
            b'[{"name": "\\u0000"}]',
            "Body is not valid JSON here: a string holds \\u0000 or an unpaired surrogate, "
            "which cannot be stored.",
        ),
        (
            b'[{"\\ud800": 1}]',
            "Body is not valid JSON here: a string holds \\u0000 or an unpaired surrogate, "
            "which cannot be stored.",
        ),
    ],
)
def test_json_that_postgresql_cannot_store_is_refused_400_and_stored_raw(client, db, body, detail):
    response = post(client, body)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "error": "malformed_json", "detail": detail}
    event = only_event()
    assert (event.status, event.last_error, event.payload) == (EventStatus.REJECTED, detail, None)
    assert bytes(event.raw_body) == body


@pytest.mark.postgres
def test_a_nul_in_a_header_or_the_content_type_is_left_out_of_what_is_stored(client, db):
    response = client.post(
        BOOKED, b"[]", content_type="text/pl\x00ain", headers={"X-Trace": "a\x00b"}
    )

    assert response.status_code == 415
    event = only_event()
    assert event.headers["X-Trace"] == "ab"
    assert event.last_error == "Content-Type must be application/json, got 'text/plain'."


def test_a_forwarded_value_that_is_no_address_is_not_stored_as_one(client, db, settings):
    settings.HUB_TRUST_X_FORWARDED_FOR = True

    post(client, fixture_bytes("rdesk/rdesk-booked.json"), headers={"X-Forwarded-For": "junk"})

    assert only_event().remote_addr == "127.0.0.1"


def test_a_body_starting_with_a_byte_order_mark_is_refused_as_json_refuses_it(client, booked_flow):
    body = "\ufeff".encode() + fixture_bytes("rdesk/rdesk-booked.json")

    response = client.post("/zdrav/booked", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert "Unexpected UTF-8 BOM" in response.json()["detail"]
