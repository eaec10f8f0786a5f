"""Telegram bot tokens are encrypted at rest, as the AmoCRM secrets are (amocrm 0005)."""

from django.db import migrations

import hub.encryption
from hub.encryption import plaintext_encrypt, secret_decrypt, stored_secrets_rewrite


def _rewrite(apps, schema_editor, change) -> None:
    table = apps.get_model("monitoring", "alertchannel")._meta.db_table
    stored_secrets_rewrite(schema_editor, table, ["telegram_bot_token"], change)


def tokens_encrypt(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, plaintext_encrypt)


def tokens_decrypt(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, secret_decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0002_alert_roles"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertchannel",
            name="telegram_bot_token",
            field=hub.encryption.EncryptedTextField(blank=True, verbose_name="Telegram bot token"),
        ),
        migrations.RunPython(tokens_encrypt, tokens_decrypt),
    ]
