"""The alert pages of the admin: channels keep their bot token to themselves, and the
history of sent alerts reads as sent."""

import json

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from integrations.monitoring.models import AlertChannel, Incident, SentAlert
from tests.conftest import fixture_json
from tests.integrations.monitoring.conftest import TELEGRAM_CHAT, TELEGRAM_TOKEN, TELEGRAM_URL

ADD = reverse("admin:monitoring_alertchannel_add")


def telegram_form(**fields) -> dict:
    return {
        "name": "Чат хаба",
        "kind": "telegram",
        "enabled": "on",
        "email_recipients": "",
        "telegram_bot_token": TELEGRAM_TOKEN,
        "telegram_chat_id": TELEGRAM_CHAT,
        **fields,
    }


def test_a_hub_admin_adds_a_telegram_channel_whose_token_is_never_shown(hub_admin_client):
    response = hub_admin_client.post(ADD, telegram_form())

    assert response.status_code == 302
    channel = AlertChannel.objects.get()
    assert channel.telegram_bot_token == TELEGRAM_TOKEN
    page = hub_admin_client.get(reverse("admin:monitoring_alertchannel_change", args=[channel.pk]))
    assert TELEGRAM_TOKEN not in page.content.decode()


def test_saving_a_channel_with_the_token_left_empty_keeps_it(hub_admin_client):
    hub_admin_client.post(ADD, telegram_form())
    channel = AlertChannel.objects.get()

    hub_admin_client.post(
        reverse("admin:monitoring_alertchannel_change", args=[channel.pk]),
        telegram_form(telegram_bot_token="", telegram_chat_id="-100999"),
    )

    channel.refresh_from_db()
    assert channel.telegram_bot_token == TELEGRAM_TOKEN
    assert channel.telegram_chat_id == "-100999"


def test_an_email_channel_needs_valid_addresses(hub_admin_client):
    response = hub_admin_client.post(
        ADD, telegram_form(kind="email", email_recipients="ops@example.ru, not an address")
    )

    assert response.status_code == 200
    assert "Not an e-mail address: not an address" in response.content.decode()
    assert not AlertChannel.objects.exists()


def test_names_of_the_environments_channels_are_kept_for_them(hub_admin_client):
    response = hub_admin_client.post(ADD, telegram_form(name="env:telegram"))

    assert response.status_code == 200
    assert not AlertChannel.objects.exists()


def test_an_auditor_reads_what_was_sent_and_what_failed(auditor_client):
    incident = Incident.objects.create(key="backlog-age", summary="The oldest event waits")
    SentAlert.objects.create(
        incident=incident,
        kind=SentAlert.Kind.OPENED,
        channel="env:telegram",
        text="Problem: the oldest event waits",
        outcome=SentAlert.Outcome.FAILED,
        error="TelegramUnavailable: Telegram did not answer in time",
    )

    page = auditor_client.get(reverse("admin:monitoring_sentalert_changelist")).content.decode()

    assert "env:telegram" in page
    assert "TelegramUnavailable: Telegram did not answer in time" in page


def test_a_hub_admin_sends_a_test_message_to_a_channel(hub_admin_client, telegram_http):
    telegram_http.post(TELEGRAM_URL, json=fixture_json("telegram/send-message-ok.json"))
    hub_admin_client.post(ADD, telegram_form())

    response = hub_admin_client.post(
        reverse("admin:monitoring_alertchannel_changelist"),
        {"action": "send_test", ACTION_CHECKBOX_NAME: [AlertChannel.objects.get().pk]},
        follow=True,
    )

    assert "Чат хаба: sent" in response.content.decode()
    assert json.loads(telegram_http.calls[0].request.body)["text"].startswith("Test message")


def test_a_failing_test_message_says_why(hub_admin_client, telegram_http):
    telegram_http.post(TELEGRAM_URL, status=401, json={"ok": False, "description": "Unauthorized"})
    hub_admin_client.post(ADD, telegram_form())

    response = hub_admin_client.post(
        reverse("admin:monitoring_alertchannel_changelist"),
        {"action": "send_test", ACTION_CHECKBOX_NAME: [AlertChannel.objects.get().pk]},
        follow=True,
    )

    content = response.content.decode()
    assert "Чат хаба: failed: TelegramRefused: HTTP 401: Unauthorized" in content
    assert TELEGRAM_TOKEN not in content
