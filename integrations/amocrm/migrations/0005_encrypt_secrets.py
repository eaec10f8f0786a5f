"""The client secret, long-lived token and OAuth pair are encrypted at rest.

The columns become text (a Fernet token is longer than the value), then every plaintext
value is encrypted in place; a value already encrypted is left alone, so the migration
can be rerun. Reversing it decrypts the values again (every key in use must be set).
"""

from django.db import migrations

import hub.encryption
from hub.encryption import plaintext_encrypt, secret_decrypt, stored_secrets_rewrite

SECRET_COLUMNS = {
    "account": ["client_secret", "long_lived_token"],
    "token": ["access_token", "refresh_token"],
}


def _rewrite(apps, schema_editor, change) -> None:
    for model_name, columns in SECRET_COLUMNS.items():
        table = apps.get_model("amocrm", model_name)._meta.db_table
        stored_secrets_rewrite(schema_editor, table, columns, change)


def secrets_encrypt(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, plaintext_encrypt)


def secrets_decrypt(apps, schema_editor) -> None:
    _rewrite(apps, schema_editor, secret_decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("amocrm", "0004_verbose_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="client_secret",
            field=hub.encryption.EncryptedTextField(blank=True, verbose_name="client secret"),
        ),
        migrations.AlterField(
            model_name="account",
            name="long_lived_token",
            field=hub.encryption.EncryptedTextField(
                blank=True,
                help_text="For private integrations: used instead of OAuth tokens when set.",
                verbose_name="long-lived token",
            ),
        ),
        migrations.AlterField(
            model_name="token",
            name="access_token",
            field=hub.encryption.EncryptedTextField(verbose_name="access token"),
        ),
        migrations.AlterField(
            model_name="token",
            name="refresh_token",
            field=hub.encryption.EncryptedTextField(blank=True, verbose_name="refresh token"),
        ),
        migrations.RunPython(secrets_encrypt, secrets_decrypt),
    ]
