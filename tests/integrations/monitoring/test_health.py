"""/healthz and /readyz: what a load balancer, compose and an operator's curl are told."""

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import resolve
from django.utils import timezone
from kombu.exceptions import OperationalError

from integrations.amocrm.models import Account, Token
from integrations.sync.models import EventStatus
from tests.factories import InboundEventFactory


def test_healthz_answers_ok_without_touching_the_database(client):
    # No ``db`` fixture: any query would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_paths_are_served_ahead_of_the_intake():
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"
    assert resolve("/metrics").url_name == "metrics"


def test_readyz_is_ok_with_a_connected_account_and_no_backlog(client, account):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    checked = body["checks"][f"account:{account.name}"]
    assert checked["ok"] is True
    assert 0 < checked["token_expires_in_seconds"] <= 20 * 3600
    assert body["checks"]["backlog"]["oldest_due_age_seconds"] == 0


def test_readyz_names_a_disconnected_account(client, account):
    account.state_set(Account.State.DISCONNECTED, "Refresh refused: token revoked")
    account.save()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == [f"account:{account.name}"]
    assert response.json()["checks"][f"account:{account.name}"]["error"] == "disconnected"


def test_readyz_fails_an_account_whose_refresh_token_amocrm_has_revoked(client, account):
    Token.objects.filter(account=account).update(refreshed_at=timezone.now() - timedelta(days=91))

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"][f"account:{account.name}"]["refresh_token_age_days"] == 91


def test_readyz_fails_when_events_wait_past_their_due_time(client, booked_flow, settings):
    settings.HUB_READY_BACKLOG_AGE = 300
    InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.QUEUED,
        next_attempt_at=timezone.now() - timedelta(minutes=10),
    )

    response = client.get("/readyz")

    assert response.status_code == 503
    backlog = response.json()["checks"]["backlog"]
    assert response.json()["failing"] == ["backlog"]
    assert 595 <= backlog["oldest_due_age_seconds"] <= 605
    assert backlog["threshold_seconds"] == 300


def test_readyz_ignores_events_scheduled_for_later(client, booked_flow):
    InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.QUEUED,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )

    assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_the_broker_cannot_be_reached(client, account):
    from hub.celery import app

    with mock.patch.object(
        app, "connection_for_write", side_effect=OperationalError("connection refused")
    ):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "OperationalError"}


@pytest.mark.redis
def test_broker_check_gives_up_quickly_on_a_dead_broker():
    from integrations.monitoring.health import broker_check

    started = timezone.now()
    check = broker_check(timeout=0.5, url="redis://127.0.0.1:1/0")

    assert check.ok is False
    assert timezone.now() - started < timedelta(seconds=2)


def test_readyz_shows_no_secret(client, account):
    account.client_secret = "client-secret-value"
    account.save()

    content = client.get("/readyz").content.decode()

    assert "live-access-token" not in content
    assert "client-secret-value" not in content
    assert Token.objects.get(account=account).refresh_token not in content


def test_probes_answer_head_requests_as_load_balancers_send(client, account):
    assert client.head("/healthz").status_code == 200
    assert client.head("/readyz").status_code == 200


def test_probes_refuse_a_post(client, db):
    assert client.post("/healthz").status_code == 405
