"""The production path for real: RDESK -> TLS -> nginx (both templates) -> gunicorn -> PostgreSQL.

nginx, gunicorn and the mirror are started once (tests/production/conftest.py); each test
reads back what the hub stored in the database they share.
"""

import json
import time

import pytest
import requests

from integrations.sync.models import InboundEvent
from tests.production.conftest import post

pytestmark = [
    pytest.mark.nginx,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

BOOKED = "/zdrav/booked"


def test_webhook_over_tls_is_stored_and_the_mirror_gets_the_same_body(
    mirroring_nginx, mirror, certificate, booked_body
):
    response = post(mirroring_nginx, BOOKED, booked_body, certificate)

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    event = InboundEvent.objects.get()
    assert bytes(event.raw_body) == booked_body
    assert event.payload == json.loads(booked_body)[0]
    assert event.remote_addr == "127.0.0.1"
    assert ("POST", BOOKED, booked_body) in mirror.wait_for(1)


def test_a_stopped_mirror_does_not_delay_the_answer(
    mirroring_nginx, mirror, certificate, booked_body
):
    mirror.stop()
    try:
        with requests.Session() as session:
            post(mirroring_nginx, BOOKED, booked_body, certificate, session)  # TLS set up
            started = time.monotonic()
            response = post(mirroring_nginx, BOOKED, booked_body, certificate, session)
            elapsed = time.monotonic() - started
    finally:
        mirror.start()

    assert response.status_code == 200
    assert elapsed < 0.1
    assert InboundEvent.objects.count() == 2


def test_requests_past_the_limit_are_answered_429_and_not_stored(
    plain_nginx, certificate, booked_body
):
    with requests.Session() as session:
        statuses = [
            post(plain_nginx, BOOKED, booked_body, certificate, session).status_code
            for _ in range(5)
        ]

    assert statuses[0] == 200
    assert 429 in statuses
    assert set(statuses) <= {200, 429}
    assert InboundEvent.objects.count() == statuses.count(200)
