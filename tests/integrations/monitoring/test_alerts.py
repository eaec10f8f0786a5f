"""Alerts: each problem opens one incident, told once per channel, with a recovery after;
a dead channel is recorded and retried, never raised."""

import json
import logging
from datetime import timedelta
from io import StringIO

import pytest
import requests
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.amocrm.models import Account, Token
from integrations.monitoring.alerts import alerts_evaluate
from integrations.monitoring.catalogue_checks import catalogues_check
from integrations.monitoring.models import AlertChannel, Incident, SentAlert
from integrations.sync.models import EventStatus
from tests.conftest import fixture_json
from tests.factories import CustomFieldFactory, FieldMappingFactory, InboundEventFactory
from tests.integrations.monitoring.conftest import TELEGRAM_CHAT, TELEGRAM_TOKEN, TELEGRAM_URL

API = "https://clinic.amocrm.ru"


def disconnect(account, reason="Refresh refused: Token has been revoked"):
    account.state_set(Account.State.DISCONNECTED, reason)
    account.save()


def reconnect(account):
    account.state_set(Account.State.CONNECTED)
    account.save()


def open_keys() -> set[str]:
    return set(Incident.objects.filter(resolved_at__isnull=True).values_list("key", flat=True))


# --- every condition fires --------------------------------------------------------------


def test_a_disconnected_account_opens_an_incident_naming_it(account, booked_flow, email_channel):
    disconnect(account)

    alerts_evaluate()

    assert open_keys() == {f"account-disconnected:{account.pk}"}
    (message,) = mail.outbox
    assert message.to == ["ops@example.ru"]
    assert f"AmoCRM account {account.name} is disconnected" in message.body
    assert "Reason: Refresh refused: Token has been revoked" in message.body
    assert message.subject.startswith("amo-hub: Problem: ")


def test_a_disconnected_account_no_flow_uses_is_not_an_incident(account):
    disconnect(account)

    alerts_evaluate()

    assert not Incident.objects.exists()


def test_a_refresh_token_older_than_the_limit_opens_an_incident(account, settings):
    settings.HUB_ALERT_REFRESH_TOKEN_AGE_DAYS = 80
    Token.objects.filter(account=account).update(refreshed_at=timezone.now() - timedelta(days=81))

    alerts_evaluate()

    incident = Incident.objects.get()
    assert incident.key == f"refresh-token-old:{account.pk}"
    assert "is 81 days old" in incident.summary


def test_a_refresh_token_younger_than_the_limit_is_fine(account, settings):
    settings.HUB_ALERT_REFRESH_TOKEN_AGE_DAYS = 80
    Token.objects.filter(account=account).update(refreshed_at=timezone.now() - timedelta(days=79))

    alerts_evaluate()

    assert not Incident.objects.exists()


def test_failed_events_above_the_threshold_open_an_incident(booked_flow, settings):
    settings.HUB_ALERT_FAILED_THRESHOLD = 2
    settings.HUB_ALERT_FAILED_WINDOW = 3600
    for _ in range(3):
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, next_attempt_at=None)

    alerts_evaluate()

    incident = Incident.objects.get()
    assert incident.key == "failed-events"
    assert "Events failed in the last 60 min: 3 (threshold 2)" in incident.summary


def test_failed_events_at_the_threshold_are_not_an_incident(booked_flow, settings):
    settings.HUB_ALERT_FAILED_THRESHOLD = 2
    for _ in range(2):
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, next_attempt_at=None)

    alerts_evaluate()

    assert not Incident.objects.exists()


def test_an_old_undelivered_event_opens_a_backlog_incident(booked_flow, settings):
    settings.HUB_ALERT_BACKLOG_AGE = 3600
    InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.QUEUED,
        received_at=timezone.now() - timedelta(hours=2),
    )

    alerts_evaluate()

    incident = Incident.objects.get()
    assert incident.key == "backlog-age"
    assert "arrived 120 min ago (threshold 60 min)" in incident.summary


def test_an_old_event_replayed_just_now_opens_no_backlog_incident(booked_flow, settings):
    settings.HUB_ALERT_BACKLOG_AGE = 3600
    InboundEventFactory(
        flow=booked_flow,
        status=EventStatus.QUEUED,
        received_at=timezone.now() - timedelta(days=3),
        replayed_at=timezone.now(),
    )

    alerts_evaluate()

    assert not Incident.objects.exists()


def test_a_mapping_to_a_vanished_field_opens_an_incident(account, booked_flow):
    booked_flow.mappings.all().delete()
    CustomFieldFactory(account=account, field_id=1287599)
    mapping = FieldMappingFactory(flow=booked_flow, source="paid", field_id=4242)

    alerts_evaluate()

    incident = Incident.objects.get()
    assert incident.key == f"mapping-field-missing:{mapping.pk}"
    assert f"Flow {booked_flow.name} maps paid to AmoCRM field 4242" in incident.summary


def test_the_daily_check_finds_a_field_deleted_in_amocrm(account, booked_flow, amocrm_http):
    booked_flow.mappings.all().delete()
    CustomFieldFactory(account=account, field_id=4242)
    FieldMappingFactory(flow=booked_flow, source="paid", field_id=4242)
    fields = {"_embedded": {"custom_fields": [{"id": 1287599, "name": "Дата", "type": "date"}]}}
    amocrm_http.get(f"{API}/api/v4/leads/custom_fields", json=fields)
    amocrm_http.get(f"{API}/api/v4/leads/pipelines", json={"_embedded": {"pipelines": []}})

    counts = catalogues_check()
    alerts_evaluate()

    assert counts == {"refreshed": 1, "failed": 0, "missing": 1}
    assert {key.split(":")[0] for key in open_keys()} == {"mapping-field-missing"}


def test_the_daily_check_survives_amocrm_being_down(account, booked_flow, amocrm_http):
    amocrm_http.get(f"{API}/api/v4/leads/custom_fields", status=503)

    assert catalogues_check()["failed"] == 1


# --- once per incident, then a recovery --------------------------------------------------


def test_an_incident_is_told_once_however_many_runs_see_it(account, booked_flow, email_channel):
    disconnect(account)

    for _ in range(3):
        alerts_evaluate()

    assert Incident.objects.count() == 1
    assert len(mail.outbox) == 1
    assert SentAlert.objects.get().outcome == SentAlert.Outcome.SENT


def test_a_cleared_problem_resolves_its_incident_with_a_recovery_message(
    account, booked_flow, email_channel
):
    disconnect(account)
    alerts_evaluate()
    reconnect(account)

    run = alerts_evaluate()

    assert run.resolved == 1
    assert Incident.objects.get().resolved_at is not None
    assert [m.subject.split(": ")[1] for m in mail.outbox] == ["Problem", "Resolved"]
    assert mail.outbox[1].body.startswith("Resolved: AmoCRM account")
    assert list(SentAlert.objects.order_by("sent_at").values_list("kind", flat=True)) == [
        SentAlert.Kind.OPENED,
        SentAlert.Kind.RESOLVED,
    ]


def test_the_same_problem_again_later_is_a_new_incident(account, booked_flow, email_channel):
    disconnect(account)
    alerts_evaluate()
    reconnect(account)
    alerts_evaluate()
    disconnect(account)

    alerts_evaluate()

    assert Incident.objects.count() == 2
    assert len(mail.outbox) == 3


def test_only_one_open_incident_per_key_is_allowed(db):
    from django.db import IntegrityError, transaction

    Incident.objects.create(key="backlog-age", summary="old")
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(key="backlog-age", summary="again")


def test_incidents_are_kept_without_any_channel(account, booked_flow):
    disconnect(account)

    alerts_evaluate()

    assert Incident.objects.count() == 1
    assert not SentAlert.objects.exists()


# --- Telegram, and a dead channel ----------------------------------------------------------


def test_telegram_gets_the_alert_in_the_configured_chat(
    account, booked_flow, telegram_channel, telegram_http
):
    telegram_http.post(TELEGRAM_URL, json=fixture_json("telegram/send-message-ok.json"))
    disconnect(account)

    alerts_evaluate()

    (call,) = telegram_http.calls
    sent = json.loads(call.request.body)
    assert sent["chat_id"] == TELEGRAM_CHAT
    assert sent["text"].startswith("Problem: AmoCRM account")
    assert SentAlert.objects.get().channel == "env:telegram"


def test_a_telegram_timeout_is_recorded_not_raised_and_retried_next_run(
    account, booked_flow, telegram_channel, telegram_http, caplog
):
    telegram_http.post(TELEGRAM_URL, body=requests.exceptions.ConnectTimeout("timed out"))
    disconnect(account)

    with caplog.at_level(logging.DEBUG):
        run = alerts_evaluate()

    assert run.failed == 1
    failed = SentAlert.objects.get()
    assert failed.outcome == SentAlert.Outcome.FAILED
    assert failed.error == "TelegramUnavailable: Telegram did not answer in time"
    assert TELEGRAM_TOKEN not in caplog.text

    telegram_http.replace("POST", TELEGRAM_URL, json=fixture_json("telegram/send-message-ok.json"))
    alerts_evaluate()

    outcomes = SentAlert.objects.order_by("sent_at", "id").values_list("outcome", flat=True)
    assert list(outcomes) == [SentAlert.Outcome.FAILED, SentAlert.Outcome.SENT]


def test_a_telegram_refusal_keeps_telegrams_reason_and_never_the_token(
    account, booked_flow, telegram_channel, telegram_http
):
    telegram_http.post(TELEGRAM_URL, status=400, json=fixture_json("telegram/chat-not-found.json"))
    disconnect(account)

    alerts_evaluate()

    error = SentAlert.objects.get().error
    assert error == "TelegramRefused: HTTP 400: Bad Request: chat not found"
    assert TELEGRAM_TOKEN not in error


def test_a_dead_telegram_does_not_keep_the_email_from_going_out(
    account, booked_flow, telegram_channel, telegram_http, email_channel, settings
):
    settings.HUB_ALERT_BACKLOG_AGE = 60
    telegram_http.post(TELEGRAM_URL, status=502)
    disconnect(account)
    InboundEventFactory(
        flow=booked_flow, status=EventStatus.QUEUED, received_at=timezone.now() - timedelta(hours=1)
    )

    alerts_evaluate()

    assert len(mail.outbox) == 2  # both incidents
    # Telegram was tried once in the run, then left alone until the next one.
    assert len(telegram_http.calls) == 1
    assert SentAlert.objects.filter(channel="env:telegram").count() == 1


def test_channels_made_in_the_admin_work_without_the_environment(
    account, booked_flow, telegram_http, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertChannel.objects.create(
        name="Дежурные", kind=AlertChannel.Kind.EMAIL, email_recipients="a@example.ru, b@example.ru"
    )
    AlertChannel.objects.create(
        name="Чат хаба",
        kind=AlertChannel.Kind.TELEGRAM,
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_chat_id=TELEGRAM_CHAT,
    )
    AlertChannel.objects.create(
        name="Выключен",
        kind=AlertChannel.Kind.EMAIL,
        email_recipients="c@example.ru",
        enabled=False,
    )
    telegram_http.post(TELEGRAM_URL, json=fixture_json("telegram/send-message-ok.json"))
    disconnect(account)

    alerts_evaluate()

    (message,) = mail.outbox
    assert message.to == ["a@example.ru", "b@example.ru"]
    assert set(SentAlert.objects.values_list("channel", flat=True)) == {"Дежурные", "Чат хаба"}


def test_alert_texts_hold_no_personal_data(booked_flow, email_channel, settings):
    from tests.integrations.rdesk.payloads import load_item

    settings.HUB_ALERT_FAILED_THRESHOLD = 0
    item = load_item("rdesk-booked.json")
    InboundEventFactory(
        flow=booked_flow,
        payload=item,
        status=EventStatus.FAILED,
        next_attempt_at=None,
        last_error=f"AmoCRM refused the update: {json.dumps(item, ensure_ascii=False)}",
    )

    alerts_evaluate()

    (message,) = mail.outbox
    assert "Фамилия1" not in message.body
    assert "Имя1" not in message.body


# --- proving a channel works ------------------------------------------------------------


def test_the_test_command_sends_to_every_channel(db, email_channel):
    out = StringIO()

    call_command("send_test_alert", stdout=out)

    assert out.getvalue() == "env:email: sent\n"
    assert mail.outbox[0].body == "Test message from amo-hub: alerts reach this channel."


def test_the_test_command_fails_when_a_channel_fails(db, telegram_channel, telegram_http):
    telegram_http.post(TELEGRAM_URL, status=500)

    with pytest.raises(CommandError, match="Failed: env:telegram"):
        call_command("send_test_alert", stdout=StringIO())


def test_the_test_command_says_when_there_is_no_channel(db):
    with pytest.raises(CommandError, match="No alert channel"):
        call_command("send_test_alert", stdout=StringIO())


# --- beat -----------------------------------------------------------------------------


def test_beat_evaluates_the_alerts_every_minute_and_checks_mappings_daily(settings):
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }

    assert schedule["integrations.monitoring.tasks.evaluate_alerts"] == 60
    assert schedule["integrations.monitoring.tasks.check_mappings"] == 24 * 3600


def test_the_alert_task_reports_what_it_did(account, booked_flow, email_channel):
    from integrations.monitoring.tasks import evaluate_alerts

    disconnect(account)

    assert evaluate_alerts() == {"opened": 1, "resolved": 0, "sent": 1, "failed": 0}


@pytest.mark.postgres
def test_a_run_while_another_is_sending_stands_down(account, booked_flow, email_channel):
    import psycopg
    from django.db import connection

    from integrations.monitoring.single_run import ALERTS_LOCK
    from integrations.monitoring.tasks import evaluate_alerts

    disconnect(account)
    # The other run: another worker's connection to the same database, holding the lock.
    params = connection.get_connection_params()
    with psycopg.connect(
        host=params["host"], port=params["port"], user=params["user"], dbname=params["dbname"]
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ALERTS_LOCK])

        assert evaluate_alerts() == {"skipped": 1}
        assert len(mail.outbox) == 0
        # Released here, not by closing: the server ends a closed session's backend, and
        # frees its locks, only a moment later.
        other.execute("SELECT pg_advisory_unlock(%s)", [ALERTS_LOCK])

    assert evaluate_alerts()["sent"] == 1
