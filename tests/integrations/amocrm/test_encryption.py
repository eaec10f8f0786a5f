"""Secrets at rest: the columns hold Fernet tokens, keys rotate, old rows are migrated.

The raw columns are read with SQL, past the field that decrypts them, as a person with a
copy of the database (a backup, a dump) would read them.
"""

import importlib
from io import StringIO
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from hub.encryption import SecretUndecryptable
from integrations.amocrm.models import Account, Token
from integrations.amocrm.services import account_set_long_lived_token
from integrations.amocrm.tokens import AccountTokens
from tests.factories import AccountFactory, TokenFactory
from tests.integrations.amocrm.consent import connect

MIGRATION = importlib.import_module("integrations.amocrm.migrations.0005_encrypt_secrets")
BEFORE, AFTER = ("amocrm", "0004_verbose_names"), ("amocrm", "0005_encrypt_secrets")
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()
COLUMNS = {
    Account: ("client_secret", "long_lived_token"),
    Token: ("access_token", "refresh_token"),
}


def raw_values() -> list[str]:
    """Every stored secret column of every account and token, as the database holds it."""
    values = []
    with connection.cursor() as cursor:
        for model, columns in COLUMNS.items():
            cursor.execute(f"SELECT {', '.join(columns)} FROM {model._meta.db_table}")
            values += [value for row in cursor.fetchall() for value in row]
    return values


def raw_set(model, pk: int, **values) -> None:
    assignments = ", ".join(f"{name} = %s" for name in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {assignments} WHERE id = %s",
            [*values.values(), pk],
        )


def secrets_of(account: Account) -> dict[str, str]:
    account = Account.objects.get(pk=account.pk)
    token = Token.objects.get(account=account)
    return {
        "client_secret": account.client_secret,
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
    }


def test_connecting_and_refreshing_store_no_secret_in_plain_text(
    admin_client, new_account, emulator
):
    connect(admin_client, new_account)
    token = Token.objects.get(account=new_account)
    AccountTokens(new_account).refreshed_token(rejected=token.access_token)
    account_set_long_lived_token(
        account=new_account, token=emulator.state.issue_token(long_lived=True)["access_token"]
    )

    stored = " ".join(value for value in raw_values() if value)
    issued = [
        emulator.state.config.client_secret,
        *emulator.state.access_tokens,
        *emulator.state.refresh_tokens,
    ]
    assert [secret[:12] for secret in issued if secret in stored] == []
    # The hub itself reads them back: the refreshed pair is the one the emulator issued.
    assert Token.objects.get(account=new_account).access_token in emulator.state.access_tokens


def test_blank_secrets_stay_blank_and_can_be_filtered_on(db):
    account = AccountFactory(client_secret="", long_lived_token="")

    assert raw_values() == ["", ""]
    assert list(Account.objects.filter(long_lived_token="")) == [account]


def test_filtering_on_a_secret_value_is_refused(db):
    with pytest.raises(ValueError, match="only be compared with the empty string"):
        list(Account.objects.filter(client_secret="client-secret-value"))


def test_rows_under_an_old_key_are_read_while_it_is_still_listed(db):
    with override_settings(HUB_ENCRYPTION_KEYS=[OLD_KEY]):
        account = TokenFactory(access_token="access-under-old-key").account

    with override_settings(HUB_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert secrets_of(account)["access_token"] == "access-under-old-key"


def test_rotation_re_encrypts_so_the_old_key_can_be_removed(db):
    with override_settings(HUB_ENCRYPTION_KEYS=[OLD_KEY]):
        account = TokenFactory(access_token="access-a", refresh_token="refresh-a").account
        before = secrets_of(account)
    output = StringIO()

    with override_settings(HUB_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        call_command("rotate_secrets", "--batch-size=1", stdout=output)
    with override_settings(HUB_ENCRYPTION_KEYS=[NEW_KEY]):
        after = secrets_of(account)

    assert after == before
    assert "amocrm.Account: 1 re-encrypted, 0 already current" in output.getvalue()
    assert "amocrm.Token: 1 re-encrypted, 0 already current" in output.getvalue()


def test_rotating_again_changes_nothing(db):
    with override_settings(HUB_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        TokenFactory.create_batch(3)
        call_command("rotate_secrets", stdout=StringIO())
        stored = raw_values()
        output = StringIO()

        call_command("rotate_secrets", stdout=output)

        assert raw_values() == stored
    assert "amocrm.Token: 0 re-encrypted, 3 already current" in output.getvalue()


def test_a_row_under_a_removed_key_is_an_error_naming_the_setting(db):
    with override_settings(HUB_ENCRYPTION_KEYS=[OLD_KEY]):
        account = AccountFactory(client_secret="under-the-old-key")

    with (
        override_settings(HUB_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(SecretUndecryptable, match="HUB_ENCRYPTION_KEYS"),
    ):
        Account.objects.get(pk=account.pk)


def test_the_migration_encrypts_plaintext_rows(db):
    account = TokenFactory().account
    raw_set(Account, account.pk, client_secret="plain-secret", long_lived_token="plain-long")
    raw_set(Token, account.token.pk, access_token="plain-access", refresh_token="plain-refresh")

    MIGRATION.secrets_encrypt(apps, SimpleNamespace(connection=connection))

    assert not {"plain-secret", "plain-long", "plain-access", "plain-refresh"} & set(raw_values())
    assert secrets_of(account) == {
        "client_secret": "plain-secret",
        "access_token": "plain-access",
        "refresh_token": "plain-refresh",
    }
    assert Account.objects.get(pk=account.pk).long_lived_token == "plain-long"


def test_the_migration_leaves_encrypted_rows_alone(db):
    TokenFactory()
    stored = raw_values()

    MIGRATION.secrets_encrypt(apps, SimpleNamespace(connection=connection))

    assert raw_values() == stored


def test_reversing_the_migration_decrypts_the_rows(db):
    TokenFactory(access_token="access-value", refresh_token="refresh-value")

    MIGRATION.secrets_decrypt(apps, SimpleNamespace(connection=connection))

    assert raw_values() == ["client-secret-value", "", "access-value", "refresh-value"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migrating_an_old_database_encrypts_its_secrets():
    MigrationExecutor(connection).migrate([BEFORE])
    try:
        old = MigrationExecutor(connection).loader.project_state([BEFORE]).apps
        account = old.get_model("amocrm", "Account").objects.create(
            name="From the old version", client_secret="x" * 200
        )
        old.get_model("amocrm", "Token").objects.create(
            account_id=account.pk,
            access_token="old-access",
            refresh_token="old-refresh",
            expires_at="2026-12-01T00:00:00Z",
        )
    finally:
        MigrationExecutor(connection).migrate([AFTER])

    assert not {"x" * 200, "old-access", "old-refresh"} & set(raw_values())
    assert secrets_of(account) == {
        "client_secret": "x" * 200,
        "access_token": "old-access",
        "refresh_token": "old-refresh",
    }
