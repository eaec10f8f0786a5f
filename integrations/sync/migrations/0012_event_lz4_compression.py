"""The events' large columns compressed with LZ4 on PostgreSQL, where the server has it.

A webhook's raw body and payload take a row past PostgreSQL's 2 KB TOAST threshold, so
every insert compressed them with pglz: most of PostgreSQL's time per event under a burst.
LZ4 compresses several times faster. Rows already stored keep their compression.
"""

from django.db import migrations

COLUMNS = ("raw_body", "payload", "headers")


def _lz4_available(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_settings "
            "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        )
        return cursor.fetchone() is not None


def _compression_set(schema_editor, method: str) -> None:
    if schema_editor.connection.vendor != "postgresql" or not _lz4_available(schema_editor):
        return
    quote = schema_editor.quote_name
    schema_editor.execute(
        f"ALTER TABLE {quote('sync_inboundevent')} "
        + ", ".join(f"ALTER COLUMN {quote(column)} SET COMPRESSION {method}" for column in COLUMNS)
    )


def forwards(apps, schema_editor):
    _compression_set(schema_editor, "lz4")


def backwards(apps, schema_editor):
    _compression_set(schema_editor, "pglz")


class Migration(migrations.Migration):
    dependencies = [("sync", "0011_event_retention")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
