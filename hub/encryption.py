"""Secrets at rest: a text field whose column holds a Fernet token, not the value.

Keys come from ``HUB_ENCRYPTION_KEYS`` (comma-separated): the first encrypts, every one
decrypts, so a new key is put first and the old ones stay until ``manage.py
rotate_secrets`` has re-encrypted every row. In the embedded mode with no key set, one is
generated once into ``var/encryption.key`` and reused.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, IsNull

from hub.secrets_init import secret_file_create, secret_file_read


class SecretUndecryptable(ImproperlyConfigured):
    """A stored secret opens with none of the configured keys."""


def encryption_keys() -> tuple[str, ...]:
    """The configured keys, first the one that encrypts."""
    keys = tuple(settings.HUB_ENCRYPTION_KEYS)
    if keys:
        return keys
    if settings.HUB_ENCRYPTION_KEY_FILE is None:
        raise ImproperlyConfigured("HUB_ENCRYPTION_KEYS is not set.")
    path = settings.HUB_ENCRYPTION_KEY_FILE
    secret_file_create(path, Fernet.generate_key().decode())
    return (secret_file_read(path),)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def secret_encrypt(value: str) -> str:
    """The Fernet token of ``value`` under the first key."""
    return _fernet(encryption_keys()).encrypt(value.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The value of a Fernet token made with any configured key."""
    try:
        return _fernet(encryption_keys()).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUndecryptable(
            "A stored secret cannot be decrypted with HUB_ENCRYPTION_KEYS: keep every key "
            "still in use in the list (new first) until `manage.py rotate_secrets` has run."
        ) from None


def secret_is_encrypted(value: str) -> bool:
    """Whether ``value`` is a Fernet token any configured key opens."""
    try:
        _fernet(encryption_keys()).decrypt(value.encode())
    except InvalidToken:
        return False
    return True


def secret_is_current(token: str) -> bool:
    """Whether ``token`` was made with the first key."""
    try:
        Fernet(encryption_keys()[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


class _EmptyOnlyExact(Exact):
    """``field=""`` works (blank stays blank); any other value could never match."""

    def get_prep_lookup(self):
        if self.rhs not in ("", None):
            raise ValueError("An encrypted field can only be compared with the empty string.")
        return super().get_prep_lookup()


class EncryptedTextField(models.TextField):
    """Text encrypted with Fernet in the database, plain to the ORM; blank stays blank.

    The column holds a different token each time a value is saved, so the field can be
    filtered on only for being empty (``field=""``) or null.
    """

    def from_db_value(self, value, expression, connection):
        return secret_decrypt(value) if value else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return secret_encrypt(value) if value else value

    def get_lookup(self, lookup_name):
        return {"exact": _EmptyOnlyExact, "isnull": IsNull}.get(lookup_name)


def encrypted_fields() -> dict[type[models.Model], list[str]]:
    """Every model with encrypted fields, and their names."""
    found = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found[model] = names
    return found


def model_secrets_rotate(
    model: type[models.Model], names: list[str], *, batch_size: int
) -> tuple[int, int]:
    """Re-encrypts ``model``'s rows not under the first key; (re-encrypted, current).

    Each batch is locked and rewritten in its own transaction, so a long table never
    holds one lock for the whole run and a rerun picks up where a stopped one left.
    """
    # Cast to plain text: the stored token, not the value the field would decrypt.
    stored = {f"{name}_stored": Cast(name, output_field=models.TextField()) for name in names}
    rotated = current = 0
    last_pk = None
    while True:
        with transaction.atomic():
            rows = model.objects.select_for_update().annotate(**stored).order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows[:batch_size])
            if not batch:
                return rotated, current
            stale = [
                row
                for row in batch
                if any(
                    token and not secret_is_current(token)
                    for token in (getattr(row, key) for key in stored)
                )
            ]
            if stale:
                # Saving the (decrypted) values encrypts them under the first key.
                model.objects.bulk_update(stale, names)
            rotated += len(stale)
            current += len(batch) - len(stale)
            last_pk = batch[-1].pk


def stored_secrets_rewrite(schema_editor, table: str, columns: list[str], change) -> None:
    """Rewrites each non-empty value of ``table``'s ``columns`` with ``change`` (a data
    migration's step: encrypting plaintext rows, or decrypting them on the way back).

    Raw SQL: the model's field would decrypt on read, which plaintext cannot survive.
    """
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    selected = ", ".join(quote(column) for column in columns)
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {selected} FROM {quote(table)}")
        for pk, *values in cursor.fetchall():
            changed = [change(value) if value else value for value in values]
            if changed != values:
                cursor.execute(
                    f"UPDATE {quote(table)} SET {assignments} WHERE id = %s", [*changed, pk]
                )


def plaintext_encrypt(value: str) -> str:
    """``value`` encrypted, unless it already is (a data migration may be rerun)."""
    return value if secret_is_encrypted(value) else secret_encrypt(value)
