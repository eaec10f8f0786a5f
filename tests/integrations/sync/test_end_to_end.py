"""End to end: a real PostgreSQL, Redis broker, Celery worker process and the emulator.

RDESK's sample booking is posted to the intake; the worker delivers it to the emulator's
lead, which must then carry every mapped value in AmoCRM's own types and formats.
"""

import time
from datetime import UTC, datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.delivery import events_sweep
from integrations.sync.models import EventStatus, InboundEvent
from tests.workers import field_values, wait_for_status

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MOSCOW = ZoneInfo("Europe/Moscow")
LEAD_ID = 23392663


def midnight(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=MOSCOW).timestamp())


def test_sample_booking_reaches_the_lead_with_every_mapped_value(
    client, emulator_flow, emulator, worker, booked_body
):
    response = client.post("/zdrav/booked", booked_body, content_type="application/json")

    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    event = wait_for_status(EventStatus.DELIVERED)
    lead = emulator.state.lead(LEAD_ID)
    values = field_values(lead)
    assert lead["price"] == 153887
    assert values[1287599] == [int(datetime(2022, 9, 5, 11, 22, 33, tzinfo=UTC).timestamp())]
    assert values[1305167] == ["61361"]
    assert values[1305111] == ["88888"]
    assert values[1304923] == ["waiting"]
    assert values[1305059] == [midnight("2026-08-25")]
    assert values[1305061] == [midnight("2026-09-05")]
    assert values[1305107] == ["33333"]
    assert values[1304335][0].splitlines() == [
        "1. Фамилия1 Имя1 Отчество2 — Взрослый, Стандарт без балкона, "
        "Лечение суставов и позвоночника, счёт 77777",
        "2. Фамилия2 Имя2 Отчество2 — Взрослый, Стандарт без балкона, "
        "Лечение суставов и позвоночника, счёт 77777",
    ]
    assert "77777" in values[1304929][0]
    attempt = event.delivery_attempts.get()
    assert (attempt.request_method, attempt.response_status) == ("PATCH", 200)
    assert attempt.request_url.endswith(f"/api/v4/leads/{LEAD_ID}")


def test_sweeper_delivers_an_event_whose_enqueue_was_lost(
    client, emulator_flow, emulator, worker, booked_body
):
    # The process dies between commit and enqueue: the row exists, no message was sent.
    with mock.patch("integrations.sync.intake.events_enqueue"):
        response = client.post("/zdrav/booked", booked_body, content_type="application/json")
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.RECEIVED
    time.sleep(1.0)

    assert events_sweep(grace=0.5) == 1

    event = wait_for_status(EventStatus.DELIVERED)
    assert emulator.state.lead(LEAD_ID)["price"] == 153887
    assert event.attempts == 1
