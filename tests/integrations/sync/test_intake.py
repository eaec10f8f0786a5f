"""The RDESK intake: what RDESK gets back and what is stored, for good and bad bodies."""

import hashlib
import json

import pytest

from integrations.sync.models import EventStatus, InboundEvent
from tests.conftest import fixture_bytes, fixture_json

BOOKED = "/zdrav/booked"
JSON = "application/json"


def post(client, body: bytes, *, path: str = BOOKED, content_type: str = JSON, **headers):
    return client.post(path, body, content_type=content_type, headers=headers)


def only_event() -> InboundEvent:
    events = list(InboundEvent.objects.all())
    assert len(events) == 1, f"expected one stored event, found {len(events)}"
    return events[0]


def enqueued_ids(apply_async) -> list[int]:
    return [call.args[0][0] for call in apply_async.call_args_list]


# --- accepted bodies ------------------------------------------------------------------


def test_array_is_answered_200_with_exactly_the_old_services_body(client, db, booked_body):
    response = post(client, booked_body)

    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'


def test_array_is_stored_as_one_received_event_per_item(client, db):
    body = fixture_bytes("rdesk/intake/booked-batch.json")
    items = json.loads(body)

    post(client, body)

    events = list(InboundEvent.objects.order_by("item_index"))
    assert [event.item_index for event in events] == [0, 1]
    assert [event.payload for event in events] == items
    assert [(event.rdesk_id, event.lead_id) for event in events] == [
        ("88888", "23392663"),
        ("1001", "500"),
    ]
    for event in events:
        assert event.flow.endpoint_path == BOOKED
        assert event.status == EventStatus.RECEIVED
        assert bytes(event.raw_body) == body
        assert event.body_hash == hashlib.sha256(body).hexdigest()
        assert event.remote_addr == "127.0.0.1"
        assert event.last_error == ""
        assert event.next_attempt_at is not None


def test_stored_headers_keep_the_callers_headers_but_not_credentials(client, db, booked_body):
    post(
        client,
        booked_body,
        Authorization="Bearer should-not-be-kept",
        Cookie="sessionid=should-not-be-kept",
        X_Rdesk_Trace="trace-1",
    )

    headers = only_event().headers
    assert headers["Content-Type"] == JSON
    assert headers["X-Rdesk-Trace"] == "trace-1"
    assert {name.lower() for name in headers}.isdisjoint({"authorization", "cookie"})
    assert "should-not-be-kept" not in json.dumps(headers)


def test_single_object_is_accepted_as_one_event(client, db):
    body = fixture_bytes("rdesk/intake/booked-object.json")

    response = post(client, body)

    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    event = only_event()
    assert event.payload == json.loads(body)
    assert (event.rdesk_id, event.lead_id, event.item_index) == ("1001", "500", 0)
    assert event.status == EventStatus.RECEIVED


def test_forwarded_address_is_stored_only_when_trusted(client, db, booked_body, settings):
    settings.HUB_TRUST_X_FORWARDED_FOR = True

    post(client, booked_body, X_Forwarded_For="203.0.113.7, 10.0.0.1")

    assert only_event().remote_addr == "203.0.113.7"


def test_forwarded_address_is_ignored_by_default(client, db, booked_body):
    post(client, booked_body, X_Forwarded_For="203.0.113.7")

    assert only_event().remote_addr == "127.0.0.1"


# --- enqueueing -----------------------------------------------------------------------


def test_delivery_is_enqueued_only_when_the_events_are_committed(
    client, db, enqueued, django_capture_on_commit_callbacks
):
    body = fixture_bytes("rdesk/intake/booked-batch.json")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, body)

    assert enqueued.call_count == 0
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {EventStatus.RECEIVED}

    for callback in callbacks:
        callback()

    # One nudge per account drains them all (these flows have none: None); the events stay
    # received, which workers claim as they claim queued ones.
    accounts = set(InboundEvent.objects.values_list("flow__account_id", flat=True))
    assert enqueued_ids(enqueued) == list(accounts)
    assert all(call.kwargs == {"countdown": None} for call in enqueued.call_args_list)
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {EventStatus.RECEIVED}


def test_a_broker_failure_still_answers_ok_and_leaves_the_event_for_the_sweeper(
    client, db, enqueued, booked_body, django_capture_on_commit_callbacks
):
    enqueued.side_effect = ConnectionError("broker down")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, booked_body)

    assert response.status_code == 200
    assert only_event().status == EventStatus.RECEIVED


# --- refused bodies -------------------------------------------------------------------

BAD_BODIES = [
    pytest.param(
        fixture_bytes("rdesk/intake/bad-truncated.json"),
        "malformed_json",
        "Body is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 2 column 1 (char 36).",
        None,
        id="malformed-json",
    ),
    pytest.param(
        fixture_bytes("rdesk/intake/bad-cp1251.json"),
        "malformed_json",
        "Body is not UTF-8: invalid continuation byte at byte 11.",
        None,
        id="invalid-utf8",
    ),
    pytest.param(b"", "malformed_json", "Body is empty; expected JSON.", None, id="empty"),
    pytest.param(b"  \n", "malformed_json", "Body is empty; expected JSON.", None, id="blank"),
    pytest.param(
        fixture_bytes("rdesk/intake/bad-array-with-string.json"),
        "not_an_object",
        "Item 1 of the array is a string, not a JSON object.",
        fixture_json("rdesk/intake/bad-array-with-string.json"),
        id="non-object-item",
    ),
    pytest.param(
        fixture_bytes("rdesk/intake/bad-scalar.json"),
        "not_an_object",
        "The body is a number, not a JSON object.",
        42,
        id="scalar",
    ),
    pytest.param(b"null", "not_an_object", "The body is null, not a JSON object.", None, id="null"),
    pytest.param(
        fixture_bytes("rdesk/intake/bad-empty-array.json"),
        "empty_batch",
        "The array is empty; nothing to deliver.",
        [],
        id="empty-array",
    ),
]


@pytest.mark.parametrize(("body", "code", "detail", "payload"), BAD_BODIES)
def test_bad_body_is_answered_400_with_a_json_error(client, db, body, code, detail, payload):
    response = post(client, body)

    assert response.status_code == 400
    assert response.json() == {"status": "error", "error": code, "detail": detail}


@pytest.mark.parametrize(("body", "code", "detail", "payload"), BAD_BODIES)
def test_bad_body_is_stored_as_one_rejected_event_with_the_reason(
    client, db, enqueued, django_capture_on_commit_callbacks, body, code, detail, payload
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, body)

    event = only_event()
    assert event.status == EventStatus.REJECTED
    assert event.last_error == detail
    assert bytes(event.raw_body) == body
    assert event.body_hash == hashlib.sha256(body).hexdigest()
    assert event.payload == payload
    assert event.flow.endpoint_path == BOOKED
    assert enqueued.call_count == 0


def test_wrong_content_type_is_answered_415_and_stored_as_rejected(client, db, booked_body):
    response = post(client, booked_body, content_type="text/plain")

    assert response.status_code == 415
    detail = "Content-Type must be application/json, got 'text/plain'."
    assert response.json() == {
        "status": "error",
        "error": "unsupported_media_type",
        "detail": detail,
    }
    event = only_event()
    assert (event.status, event.last_error) == (EventStatus.REJECTED, detail)
    assert bytes(event.raw_body) == booked_body


@pytest.mark.parametrize(
    "content_type",
    ["", "application/json; charset=utf-8", "application/vnd+json", "APPLICATION/JSON"],
)
def test_json_content_types_and_no_content_type_are_accepted(client, db, booked_body, content_type):
    response = post(client, booked_body, content_type=content_type)

    assert response.status_code == 200
    assert only_event().status == EventStatus.RECEIVED


def test_body_over_the_limit_is_answered_413_and_stored_truncated(
    client, db, booked_body, settings
):
    settings.HUB_MAX_BODY_BYTES = 100

    response = post(client, booked_body)

    assert response.status_code == 413
    detail = f"Body is {len(booked_body)} bytes; the limit is 100 bytes."
    assert response.json() == {"status": "error", "error": "body_too_large", "detail": detail}
    event = only_event()
    assert (event.status, event.last_error) == (EventStatus.REJECTED, detail)
    assert bytes(event.raw_body) == booked_body[:100]
    assert event.payload is None


def test_body_exactly_at_the_limit_is_accepted(client, db, booked_body, settings):
    settings.HUB_MAX_BODY_BYTES = len(booked_body)

    response = post(client, booked_body)

    assert response.status_code == 200
    assert bytes(only_event().raw_body) == booked_body


# --- paths ----------------------------------------------------------------------------


def test_unknown_path_is_answered_404_and_nothing_is_stored(client, db, booked_body):
    response = post(client, booked_body, path="/zdrav/unknown")

    assert response.status_code == 404
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize(
    ("path", "fixture", "kind"),
    [
        ("/zdrav/booked", "rdesk/rdesk-booked.json", "booked"),
        ("/zdrav/mc", "rdesk/rdesk-mc.json", "mc"),
    ],
)
def test_seeded_flows_serve_the_old_services_paths(client, db, path, fixture, kind):
    response = post(client, fixture_bytes(fixture), path=path)

    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    assert only_event().flow.kind == kind


def test_a_get_of_a_flows_path_is_answered_405(client, db):
    assert client.get("/zdrav/booked").status_code == 405


def test_a_get_of_a_path_no_flow_serves_is_answered_404(client, db):
    assert client.get("/favicon.ico").status_code == 404
