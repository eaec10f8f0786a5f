"""Where alerts go: the channels named in the environment and those made in the admin.

A channel sends one text and says how it went; it never raises, so one dead channel
(an SMTP server that hangs, Telegram down) costs at most its timeout and the others
still get the message.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.utils.translation import gettext

from integrations.monitoring.models import AlertChannel
from integrations.monitoring.telegram import TelegramClient, TelegramError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """How sending to a channel went: ``error`` is empty on success (never a secret)."""

    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


class EmailChannel:
    def __init__(self, name: str, recipients: list[str]):
        self.name = name
        self.recipients = recipients

    def send(self, text: str) -> Delivery:
        subject = gettext("amo-hub: %(line)s") % {"line": text.splitlines()[0][:150]}
        try:
            connection = get_connection(timeout=settings.HUB_ALERT_EMAIL_TIMEOUT)
            send_mail(
                subject,
                text,
                settings.DEFAULT_FROM_EMAIL,
                self.recipients,
                connection=connection,
            )
        except Exception as error:  # SMTP, socket, TLS: all mean "not sent, try next run"
            logger.warning(
                "alert e-mail failed",
                extra={"channel": self.name, "error_class": type(error).__name__},
            )
            return Delivery(error=f"{type(error).__name__}: {error}"[:500])
        return Delivery()


class TelegramChannel:
    def __init__(self, name: str, *, bot_token: str, chat_id: str):
        self.name = name
        self.client = TelegramClient(bot_token)
        self.chat_id = chat_id

    def send(self, text: str) -> Delivery:
        try:
            self.client.message_send(chat_id=self.chat_id, text=text)
        except TelegramError as error:
            logger.warning(
                "alert to telegram failed",
                extra={"channel": self.name, "error_class": type(error).__name__},
            )
            return Delivery(error=f"{type(error).__name__}: {error.detail}"[:500])
        return Delivery()


def test_text() -> str:
    return gettext("Test message from amo-hub: alerts reach this channel.")


def channel_of(row: AlertChannel):
    """The sender for a channel made in the admin; None when it lacks what it needs."""
    if row.kind == AlertChannel.Kind.EMAIL and row.recipients:
        return EmailChannel(row.name, row.recipients)
    if row.kind == AlertChannel.Kind.TELEGRAM and row.telegram_bot_token and row.telegram_chat_id:
        return TelegramChannel(
            row.name, bot_token=row.telegram_bot_token, chat_id=row.telegram_chat_id
        )
    return None


def channels_configured() -> list:
    """The environment's channels (``env:email``, ``env:telegram``), then enabled rows."""
    channels = []
    if settings.HUB_ALERT_EMAILS:
        channels.append(EmailChannel("env:email", list(settings.HUB_ALERT_EMAILS)))
    if settings.HUB_TELEGRAM_BOT_TOKEN and settings.HUB_TELEGRAM_CHAT_ID:
        channels.append(
            TelegramChannel(
                "env:telegram",
                bot_token=settings.HUB_TELEGRAM_BOT_TOKEN,
                chat_id=settings.HUB_TELEGRAM_CHAT_ID,
            )
        )
    for row in AlertChannel.objects.filter(enabled=True):
        channel = channel_of(row)
        if channel is not None:
            channels.append(channel)
    return channels
