"""A trigram index on the payload's text, so a search by a guest's name stays fast.

The admin searches names with a case-insensitive regular expression over
``payload::text``; pg_trgm's GIN operator class serves such searches from an index
instead of reading every payload. PostgreSQL only; where the extension cannot be created
(no right to), the search still works, only slower.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

INDEX = "event_payload_trgm_idx"


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON sync_inboundevent "
                "USING gin ((payload::text) gin_trgm_ops)"
            )
    except DatabaseError as error:
        logger.warning("payload search index not created", extra={"error": str(error)})


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("sync", "0005_roles")]

    operations = [migrations.RunPython(index_create, index_drop)]
