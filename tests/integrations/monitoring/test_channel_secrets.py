"""A Telegram bot token is kept encrypted, as the AmoCRM secrets are."""

import importlib
from types import SimpleNamespace

from django.apps import apps
from django.db import connection

from integrations.monitoring.models import AlertChannel

MIGRATION = importlib.import_module(
    "integrations.monitoring.migrations.0003_encrypt_telegram_token"
)
BOT_TOKEN = "123456:bot-token-value"


def stored_token(channel: AlertChannel) -> str:
    """The column as the database (a backup, a dump) holds it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT telegram_bot_token FROM {AlertChannel._meta.db_table} WHERE id = %s",
            [channel.pk],
        )
        return cursor.fetchone()[0]


def telegram_channel() -> AlertChannel:
    return AlertChannel.objects.create(
        name="ops",
        kind=AlertChannel.Kind.TELEGRAM,
        telegram_bot_token=BOT_TOKEN,
        telegram_chat_id="-100",
    )


def test_the_bot_token_is_not_stored_in_plain_text(db):
    channel = telegram_channel()

    assert BOT_TOKEN not in stored_token(channel)
    assert AlertChannel.objects.get(pk=channel.pk).telegram_bot_token == BOT_TOKEN


def test_the_migration_encrypts_a_plaintext_bot_token(db):
    channel = telegram_channel()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AlertChannel._meta.db_table} SET telegram_bot_token = %s WHERE id = %s",
            [BOT_TOKEN, channel.pk],
        )

    MIGRATION.tokens_encrypt(apps, SimpleNamespace(connection=connection))

    assert BOT_TOKEN not in stored_token(channel)
    assert AlertChannel.objects.get(pk=channel.pk).telegram_bot_token == BOT_TOKEN
