"""Logs never hold guests' personal data, at any level.

Bodies full of distinctive personal values (tests/fixtures/rdesk/personal/) are played
through the intake (valid, invalid and malformed), delivered to the emulator (one lead
refused by AmoCRM's validation), and every log record is captured at DEBUG as the JSON
formatter writes it. None of the values may appear in it.
"""

import json
import logging
from unittest import mock

from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient
from integrations.amocrm.tokens import AccountTokens
from integrations.sync.delivery import account_drain
from integrations.sync.models import (
    EventStatus,
    FlowStatusMapping,
    InboundEvent,
)
from integrations.sync.tasks import prune_events
from tests.conftest import fixture_bytes, fixture_json

BOOKINGS_PIPELINE = 10156066
REFUSED_STATUS_ID = 999999
# Every personal value of the fixtures, in each spelling the hub writes it.
PERSONAL = [
    "Белозёрова",
    "Ангелина",
    "Всеволодовна",
    "Белозёров",
    "Святослав",
    "79167770431",
    "angelina.belozerova",
    "1961-04-12",
    "12.04.1961",
    "1987-11-23",
    "23.11.1987",
    "Лечение щитовидной железы",
    "Реабилитация после эндопротезирования",
    "7F3A9C0E11D24B58A6E0C4D2B9F81234",
    "Ярошевская",
    "Милена",
    "Тимуровна",
    "89261234987",
    "milena.yaroshevskaya",
    "1958-02-17",
    "17.02.1958",
    "Консультация эндокринолога",
    "Гликированный гемоглобин",
    "Диабет-контроль",
    "Осмотр стоп при диабете",
]


def leaks(text: str) -> list[str]:
    return [value for value in PERSONAL if value in text]


def post(client, path: str, body: bytes):
    response = client.post(path, body, content_type="application/json")
    assert response.status_code < 500
    return response


def test_intake_and_delivery_log_no_personal_value_at_any_level(
    client, emulator, emulator_flow, mc_emulator_flow, json_log
):
    for lead_id in (61500001, 61500002, 61500003):
        emulator.state.add_lead(id=lead_id)
    FlowStatusMapping.objects.create(
        flow=emulator_flow,
        booking_status="checkin",
        pipeline_id=BOOKINGS_PIPELINE,
        status_id=REFUSED_STATUS_ID,
    )
    booked = fixture_bytes("rdesk/personal/booked.json")
    refused = fixture_json("rdesk/personal/booked.json")
    refused[0].update(status="checkin", lead_id=61500002, id=615004)

    post(client, "/zdrav/booked", booked)
    post(client, "/zdrav/booked", json.dumps(refused, ensure_ascii=False).encode())
    post(client, "/zdrav/booked", fixture_bytes("rdesk/personal/booked-invalid.json"))
    post(client, "/zdrav/booked", booked[:-40])  # cut short: not JSON
    post(client, "/zdrav/mc", fixture_bytes("rdesk/personal/mc.json"))
    account_drain(account_id=emulator_flow.account_id)

    log = json_log.getvalue()
    assert leaks(log) == []
    # The play happened, and was logged: accepted, rejected, delivered and refused.
    statuses = set(InboundEvent.objects.values_list("status", flat=True))
    assert {EventStatus.DELIVERED, EventStatus.FAILED, EventStatus.REJECTED} <= statuses
    records = [json.loads(line) for line in log.splitlines()]
    messages = {record["message"] for record in records}
    assert {"intake accepted", "intake rejected", "amocrm call", "claim delivered"} <= messages
    assert any(r["message"] == "amocrm call" and r["status"] == 400 for r in records)
    refused_event = InboundEvent.objects.get(rdesk_id="615004")
    assert refused_event.status == EventStatus.FAILED
    assert "NotSupportedChoice" in refused_event.last_error


def test_a_delivery_crash_logs_the_error_class_and_not_its_message(
    emulator, emulator_flow, json_log
):
    emulator.state.add_lead(id=61500001)
    item = fixture_json("rdesk/personal/booked.json")[0]
    InboundEvent.objects.create(
        flow=emulator_flow,
        raw_body=b"[]",
        body_hash="0" * 64,
        payload=item,
        lead_id="61500001",
        status=EventStatus.QUEUED,
        next_attempt_at=timezone.now(),
    )
    crash = ValueError(f"cannot write {item['name']}, {item['phone']}")

    with mock.patch("integrations.sync.delivery.items_send", side_effect=crash):
        account_drain(account_id=emulator_flow.account_id)

    log = json_log.getvalue()
    assert leaks(log) == []
    (record,) = [json.loads(line) for line in log.splitlines() if "delivery crashed" in line]
    assert record["error_class"] == "ValueError"
    assert "ValueError (message not logged)" in record["exception"]
    assert "in claim_deliver" in record["exception"]


def test_an_exception_and_its_cause_are_logged_without_their_messages(json_log):
    logger = logging.getLogger("tests.logs")
    item = fixture_json("rdesk/personal/booked.json")[0]
    guest = item["extData"]["guests"][0]
    try:
        try:
            raise KeyError(item["name"])
        except KeyError as error:
            raise RuntimeError(f"guest {item['phone']} refused") from error
    except RuntimeError:
        logger.exception("failed", extra={"cause": KeyError(guest["birthday"])})

    record = json.loads(json_log.getvalue())
    assert leaks(json.dumps(record, ensure_ascii=False)) == []
    assert record["error_class"] == "RuntimeError"
    assert record["cause"] == "KeyError"
    assert "KeyError (message not logged)" in record["exception"]
    assert "direct cause" in record["exception"]


def test_an_amocrm_call_is_logged_without_its_query(account, amocrm_http, json_log):
    amocrm_http.get("https://clinic.amocrm.ru/api/v4/leads", status=204)
    client = AmoCRMClient(account, tokens=AccountTokens(account), audit=False)

    client.leads_search("Белозёрова 79167770431")

    (record,) = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert record["message"] == "amocrm call"
    assert record["url"] == "https://clinic.amocrm.ru/api/v4/leads"
    assert leaks(json_log.getvalue()) == []


def test_a_failed_celery_task_is_logged_without_the_exceptions_text(db, json_log):
    item = fixture_json("rdesk/personal/booked.json")[0]
    crash = ValueError(f"cannot prune {item['name']}")

    with mock.patch("integrations.sync.tasks.events_prune", side_effect=crash):
        prune_events.apply()

    log = json_log.getvalue()
    assert leaks(log) == []
    (record,) = [json.loads(line) for line in log.splitlines() if "raised unexpected" in line]
    assert record["message"].endswith("raised unexpected: ValueError (message not logged)")
    assert record["data"]["traceback"] == ""
