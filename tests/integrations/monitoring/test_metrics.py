"""/metrics: who may scrape it, and what it says after RDESK posts and the hub delivers."""

import os
from unittest import mock

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations.amocrm.client import Unauthorized
from integrations.amocrm.models import Token
from integrations.amocrm.tokens import AccountTokens
from integrations.monitoring import metrics
from integrations.monitoring.metrics import intake_answered, route_template
from integrations.sync.delivery import event_deliver
from integrations.sync.models import EventStatus
from tests.conftest import fixture_json
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

LEAD_URL = "https://clinic.amocrm.ru/api/v4/leads/23392663"
TOKEN_URL = "https://clinic.amocrm.ru/oauth2/access_token"
LEAD_ANSWER = {"id": 23392663, "updated_at": 1751621727}


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- who may scrape ---------------------------------------------------------------------


def test_without_a_token_set_the_local_network_may_scrape(client, db, settings):
    settings.HUB_METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR="10.0.3.7").status_code == 200


def test_without_a_token_set_a_request_relayed_by_a_proxy_is_refused(client, db, settings):
    settings.HUB_METRICS_TOKEN = ""

    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})

    assert response.status_code == 403


def test_without_a_token_set_a_public_address_is_refused(client, db, settings):
    settings.HUB_METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR="93.184.215.14").status_code == 403


def test_with_a_token_set_a_request_without_it_is_asked_for_it(client, db, settings):
    settings.HUB_METRICS_TOKEN = "scrape-secret"

    response = client.get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_with_a_token_set_a_wrong_token_is_refused(client, db, settings):
    settings.HUB_METRICS_TOKEN = "scrape-secret"

    response = client.get("/metrics", headers={"Authorization": "Bearer guessed"})

    assert response.status_code == 403
    assert b"scrape-secret" not in response.content


def test_with_a_token_set_the_right_token_scrapes_from_anywhere(client, db, settings):
    settings.HUB_METRICS_TOKEN = "scrape-secret"

    response = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", headers={"Authorization": "Bearer scrape-secret"}
    )

    assert response.status_code == 200


# --- what it says -------------------------------------------------------------------------


def test_database_figures_are_read_at_scrape_time(client, booked_flow, account):
    InboundEventFactory(flow=booked_flow, status=EventStatus.QUEUED)
    InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, next_attempt_at=None)

    samples = scrape(client)

    flow = booked_flow.name
    assert value(samples, "amohub_events_last_day", flow=flow, status="queued") == 1
    assert value(samples, "amohub_events_last_day", flow=flow, status="failed") == 1
    assert value(samples, "amohub_database_up") == 1
    assert value(samples, "amohub_backlog_events") == 1
    assert value(samples, "amohub_failed_events") == 1
    assert value(samples, "amohub_backlog_oldest_age_seconds") >= 0
    assert value(samples, "amohub_amocrm_account_connected", account=account.name) == 1
    expires_in = value(samples, "amohub_amocrm_token_expires_in_seconds", account=account.name)
    assert 19 * 3600 < expires_in <= 20 * 3600


def test_a_posted_booking_shows_in_the_events_by_flow(client, booked_flow, booked_body, enqueued):
    assert (
        client.post("/zdrav/booked", booked_body, content_type="application/json").status_code
        == 200
    )

    samples = scrape(client)

    received = sum(
        value(samples, "amohub_events_last_day", flow=booked_flow.name, status=status)
        for status in ("received", "queued")
    )
    assert received == 1


def test_intake_answers_are_counted_by_flow_and_status(client, db):
    before = scrape(client)

    intake_answered("Бронирования", 200)
    intake_answered("Бронирования", 200)
    intake_answered("Бронирования", 413)

    after = scrape(client)
    name = "amohub_intake_requests_total"
    assert (
        value(after, name, flow="Бронирования", status="200")
        - value(before, name, flow="Бронирования", status="200")
        == 2
    )
    assert (
        value(after, name, flow="Бронирования", status="413")
        - value(before, name, flow="Бронирования", status="413")
        == 1
    )


def test_a_delivery_counts_its_call_its_wait_and_its_latency(client, booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = InboundEventFactory(
        flow=booked_flow,
        payload=load_item("rdesk-booked.json"),
        status=EventStatus.QUEUED,
        lead_id="23392663",
    )
    before = scrape(client)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"method": "PATCH", "route": "/api/v4/leads/{id}", "status": "200"}
    assert grew("amohub_amocrm_calls_total", **route) == 1
    assert grew("amohub_delivery_latency_seconds_count") == 1
    assert grew("amohub_delivery_latency_seconds_bucket", le="+Inf") == 1
    assert grew("amohub_amocrm_rate_wait_seconds_count") == 1


def test_refresh_outcomes_are_counted(client, account, amocrm_http):
    Token.objects.filter(account=account).update(expires_at=timezone.now())
    amocrm_http.post(TOKEN_URL, json=fixture_json("amocrm/token-pair.json"))
    amocrm_http.post(TOKEN_URL, status=400, json={"hint": "Token has been revoked"})
    before = scrape(client)

    AccountTokens(account).access_token()
    with pytest.raises(Unauthorized):
        AccountTokens(account).refreshed_token(rejected=Token.objects.get().access_token)

    after = scrape(client)
    name = "amohub_amocrm_token_refreshes_total"
    for outcome in ("refreshed", "refused"):
        grown = value(after, name, outcome=outcome) - value(before, name, outcome=outcome)
        assert grown == 1, outcome


@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("https://clinic.amocrm.ru/api/v4/leads/23392663", "/api/v4/leads/{id}"),
        ("https://clinic.amocrm.ru/api/v4/leads?query=ID_5&limit=250", "/api/v4/leads"),
        (
            "https://clinic.amocrm.ru/api/v4/leads/custom_fields?page=2",
            "/api/v4/leads/custom_fields",
        ),
        ("https://clinic.amocrm.ru/oauth2/access_token", "/oauth2/access_token"),
    ],
)
def test_routes_are_templates_without_ids_or_queries(url, route):
    assert route_template(url) == route


# --- files of processes that ended -----------------------------------------------------


def ended_process_counts(pid: int, requests: float) -> str:
    """The counter file a process with ``pid`` on this host left behind."""
    from django.conf import settings
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    path = os.path.join(
        settings.PROMETHEUS_MULTIPROC_DIR, f"counter_{metrics.process_identifier(pid)}.db"
    )
    counts = MmapedDict(path)
    key = mmap_key(
        "amohub_intake_requests",
        "amohub_intake_requests_total",
        ["flow", "status"],
        ["Архив", "200"],
        metrics.INTAKE_REQUESTS._documentation,
    )
    counts.write_value(key, requests, 0.0)
    counts.close()
    return path


def test_an_ended_process_counts_are_kept_in_the_archive(client, db):
    first, second = ended_process_counts(999_991, 3), ended_process_counts(999_992, 4)
    before = scrape(client)

    metrics.process_files_archive(999_991)
    metrics.process_files_archive(999_992)

    after = scrape(client)
    name = "amohub_intake_requests_total"
    assert value(before, name, flow="Архив", status="200") == value(
        after, name, flow="Архив", status="200"
    )
    assert value(after, name, flow="Архив", status="200") >= 7
    assert not os.path.exists(first)
    assert not os.path.exists(second)


def test_gunicorn_archives_the_files_of_a_worker_that_ended(db):
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    config = runpy.run_path(str(Path(__file__).parents[3] / "hub" / "gunicorn.conf.py"))
    left = ended_process_counts(999_993, 2)

    config["child_exit"](None, SimpleNamespace(pid=999_993))

    assert not os.path.exists(left)


def test_without_the_database_the_scrape_still_answers_with_the_counters(client, db):
    from django.db import OperationalError

    intake_answered("Бронирования", 200)
    with mock.patch(
        "integrations.monitoring.collectors.backlog_summary",
        side_effect=OperationalError("connection refused"),
    ):
        samples = scrape(client)

    assert value(samples, "amohub_database_up") == 0
    assert value(samples, "amohub_intake_requests_total", flow="Бронирования", status="200") >= 1
    assert not any(name == "amohub_backlog_events" for name, _ in samples)


def test_with_a_token_set_a_token_of_any_characters_is_refused_not_failed(client, db, settings):
    settings.HUB_METRICS_TOKEN = "scrape-secret"

    response = client.get("/metrics", headers={"Authorization": "Bearer été"})

    assert response.status_code == 403
