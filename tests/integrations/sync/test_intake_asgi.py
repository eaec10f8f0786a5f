"""The intake's ASGI door (hub/asgi.py): RDESK's POSTs stored and answered in the event loop,
everything else answered by Django as before.

The door's insert runs on its own pooled connections, which see only committed rows:
these tests commit (``transaction=True``) and need PostgreSQL.
"""

import asyncio
import json
import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection

from hub.asgi import application_build
from integrations.sync import intake_nudges
from integrations.sync.intake_auth import flow_token_issue
from integrations.sync.intake_batches import INTAKE_APPLICATION_NAME, inserters_close
from integrations.sync.intake_nudges import nudges_sent
from integrations.sync.models import EventStatus, InboundEvent
from tests.conftest import fixture_bytes, in_own_loop

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

BOOKED = fixture_bytes("rdesk/rdesk-booked.json")


class Answer:
    def __init__(self, sent: list[dict]):
        start = sent[0]
        self.status = start["status"]
        self.headers = {name.decode(): value.decode() for name, value in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in sent[1:])

    def json(self):
        return json.loads(self.body)


def scope_of(method: str, path: str, *, body=b"", host="127.0.0.1", query=b"", headers=()):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", host.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("10.1.2.3", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app, scope, body=b"") -> Answer:
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent = []

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return Answer(sent)


def in_one_loop(steps):
    """``steps(app)`` with the hub's ASGI application, in a loop of its own; then the
    nudges are sent and the intake's connections closed, as at the server's shutdown."""

    async def run():
        try:
            return await steps(application_build())
        finally:
            await nudges_sent()
            await inserters_close()

    return in_own_loop(run)


def post(app, body=BOOKED, path="/zdrav/booked"):
    return call(app, scope_of("POST", path, body=body), body)


def request(method: str, path: str, body=b"", **options) -> Answer:
    """One request through the hub's ASGI application, in a loop of its own."""
    return in_one_loop(lambda app: call(app, scope_of(method, path, body=body, **options), body))


def test_a_post_is_stored_and_answered_as_the_old_service_did(booked_flow):
    answer = request("POST", "/zdrav/booked", BOOKED)

    assert (answer.status, answer.body) == (200, b'{"status":"ok"}')
    assert answer.headers["content-type"] == "application/json"
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.RECEIVED
    assert event.payload == json.loads(BOOKED)[0]
    assert event.flow == booked_flow


def test_the_event_is_stored_as_the_django_view_stores_it(booked_flow, client):
    request("POST", "/zdrav/booked", BOOKED, headers=[(b"x-request-id", b"abc")])
    client.post("/zdrav/booked", BOOKED, content_type="application/json", HTTP_X_REQUEST_ID="abc")

    by_door, by_view = InboundEvent.objects.order_by("pk")
    compared = ["payload", "raw_body", "body_hash", "rdesk_id", "lead_id", "status", "item_index"]
    assert [getattr(by_door, f) for f in compared] == [getattr(by_view, f) for f in compared]
    assert by_door.headers["X-Request-Id"] == by_view.headers["X-Request-Id"] == "abc"
    assert by_door.next_attempt_at == by_door.received_at


def test_an_invalid_item_is_refused_with_its_errors_and_stored(booked_flow):
    item = json.loads(BOOKED)[0]
    del item["checkin"]

    answer = request("POST", "/zdrav/booked", json.dumps([item]).encode())

    assert answer.status == 422
    assert answer.json()["error"] == "invalid_items"
    assert answer.json()["items"][0]["index"] == 0
    assert InboundEvent.objects.get().status == EventStatus.REJECTED


def test_a_wrong_token_is_refused_and_stored_without_it(booked_flow):
    flow_token_issue(flow=booked_flow)

    answer = request("POST", "/zdrav/booked/not-the-token", BOOKED)

    assert (answer.status, answer.json()["error"]) == (401, "token_invalid")
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.REJECTED
    assert "not-the-token" not in json.dumps(event.headers)


def test_the_answer_carries_djangos_security_headers(booked_flow, client):
    by_view = client.post("/zdrav/booked", BOOKED, content_type="application/json")

    answer = request("POST", "/zdrav/booked", BOOKED)

    for name in ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"):
        assert answer.headers[name.lower()] == by_view.headers[name]
    assert answer.headers["content-language"] == "en"


def test_hsts_is_sent_behind_the_tls_proxy_as_django_sends_it(booked_flow, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    settings.SECURE_HSTS_PRELOAD = False

    plain = request("POST", "/zdrav/booked", BOOKED)
    behind_tls = request(
        "POST", "/zdrav/booked", BOOKED, headers=[(b"x-forwarded-proto", b"https")]
    )

    assert "strict-transport-security" not in plain.headers
    assert behind_tls.headers["strict-transport-security"] == "max-age=3600"


def test_a_setting_changed_after_a_request_is_followed_by_the_next(booked_flow, settings):
    request("POST", "/zdrav/booked", BOOKED)  # the door has read its settings
    settings.HUB_MAX_BODY_BYTES = 100
    settings.ALLOWED_HOSTS = ["hub.example.ru"]

    too_large = request("POST", "/zdrav/booked", BOOKED, host="hub.example.ru")
    other_host = request("POST", "/zdrav/booked", BOOKED, host="127.0.0.1")

    assert (too_large.status, too_large.json()["error"]) == (413, "body_too_large")
    assert other_host.status == 400


def test_a_path_no_flow_serves_is_answered_by_django(booked_flow):
    answer = request("POST", "/zdrav/unknown", BOOKED)

    assert (answer.status, answer.json()["error"]) == (404, "not_found")
    assert not InboundEvent.objects.exists()


def test_another_method_is_answered_by_django(booked_flow):
    answer = request("GET", "/zdrav/booked")

    assert (answer.status, answer.headers["allow"]) == (405, "POST")


def test_a_host_django_refuses_is_refused_by_django(booked_flow):
    answer = request("POST", "/zdrav/booked", BOOKED, host="evil.example")

    assert answer.status == 400
    assert not InboundEvent.objects.exists()


def _intake_backends_end(database: str) -> int:
    """Ends the server processes of the door's pooled connections, as a restart does."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname="postgres"
    ) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            [database, INTAKE_APPLICATION_NAME],
        ).fetchone()[0]
    return ended


def test_after_a_restart_the_insert_runs_on_a_new_connection(booked_flow):
    async def steps(app):
        first = await post(app)
        assert await asyncio.to_thread(_intake_backends_end, connection.settings_dict["NAME"])
        return first, await post(app)

    first, second = in_one_loop(steps)

    assert (first.status, second.status) == (200, 200)
    assert InboundEvent.objects.count() == 2


def test_a_request_the_database_cannot_take_is_answered_500_and_can_be_sent_again(
    booked_flow, monkeypatch
):
    async def database_down(**request):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr("integrations.sync.intake.events_insert_async", database_down)

    answer = request("POST", "/zdrav/booked", BOOKED)

    assert (answer.status, answer.json()["error"]) == (500, "not_stored")
    assert "Send it again" in answer.json()["detail"]


def test_when_the_flows_cannot_be_read_the_answer_is_500_as_json(booked_flow, monkeypatch):
    async def database_down(path):
        raise OperationalError("connection refused")

    monkeypatch.setattr("integrations.sync.intake_asgi.flow_route_async", database_down)

    answer = request("POST", "/zdrav/booked", BOOKED)

    assert (answer.status, answer.json()["error"]) == (500, "not_stored")


def test_a_statement_the_server_holds_is_given_up_after_the_wait(booked_flow, settings):
    settings.HUB_INTAKE_DB_WAIT = 1.0
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"], port=params["PORT"], user=params["USER"], dbname=params["NAME"]
    ) as other:
        # As a server that stopped answering: the insert waits for the table's lock.
        other.execute("LOCK TABLE sync_inboundevent IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        answer = request("POST", "/zdrav/booked", BOOKED)
        waited = time.monotonic() - started
        other.rollback()

    assert (answer.status, answer.json()["error"]) == (500, "not_stored")
    assert waited < 5  # the wait (1 s), not the lock's


@pytest.fixture
def nudges(monkeypatch, settings):
    """What the door's nudges send (``events_enqueue``), recorded instead of sent."""
    settings.HUB_INTAKE_NUDGE_INTERVAL = 0.5
    monkeypatch.setattr(intake_nudges, "_wanted", set())
    sent = []
    monkeypatch.setattr(
        intake_nudges, "events_enqueue", lambda ids, account_ids: sent.append(account_ids)
    )
    return sent


def test_a_burst_nudges_the_workers_once_per_interval(booked_flow, nudges):
    async def steps(app):
        return [(await post(app)).status for _ in range(20)]

    assert in_one_loop(steps) == [200] * 20

    assert InboundEvent.objects.count() == 20
    # At once for the first request, then once for all that came within the interval.
    assert nudges == [[booked_flow.account_id], [booked_flow.account_id]]


@pytest.fixture
def hung_broker(monkeypatch):
    """A broker that does not answer until the test sets the event (10 s at most)."""
    answers = threading.Event()
    monkeypatch.setattr(intake_nudges, "events_enqueue", lambda ids, account_ids: answers.wait(10))
    return answers


def test_the_answer_does_not_wait_for_the_nudge(booked_flow, hung_broker):
    async def steps(app):
        answer = await post(app)
        nudge_still_waiting = not intake_nudges._sender.done()
        hung_broker.set()
        return answer, nudge_still_waiting

    answer, nudge_still_waiting = in_one_loop(steps)

    assert answer.status == 200
    assert nudge_still_waiting


def test_a_hung_broker_does_not_hold_up_storing_a_refusal(booked_flow, hung_broker):
    item = json.loads(BOOKED)[0]
    del item["checkin"]

    async def steps(app):
        await post(app)  # its nudge waits on the broker
        refused = await post(app, json.dumps([item]).encode())
        nudge_still_waiting = not intake_nudges._sender.done()
        hung_broker.set()
        return refused, nudge_still_waiting

    refused, nudge_still_waiting = in_one_loop(steps)

    assert refused.status == 422
    assert nudge_still_waiting
    assert InboundEvent.objects.filter(status=EventStatus.REJECTED).count() == 1
