"""The name search's trigram index over the names alone, not over the whole payload.

0006 indexed the trigrams of every payload's whole text. Each write of an event (its
insert, its claim, its outcome: three per event, none of them a HOT update) extracted
several hundred trigrams again and queued them in the index's pending list, and whichever
insert found that list full merged it while RDESK waited: the intake's slowest answers
and most of PostgreSQL's work under a burst. The search only ever looks inside ``name``
and ``fio`` values, so ``amohub_event_names(payload)`` gives just those, one per line, and
the index covers that: a few dozen trigrams per event.

PostgreSQL only; without pg_trgm the function is still made and the search still works,
only slower (as before).
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

FUNCTION = "amohub_event_names"
INDEX = "event_names_trgm_idx"
OLD_INDEX = "event_payload_trgm_idx"


def _names_path(key: str) -> str:
    return (
        f'\'strict $.** ? (@.type() == "object" && exists(@.{key})).{key} '
        '? (@.type() == "string")\''
    )


# IMMUTABLE, as an index expression must be: jsonb_path_query is, and the order of the
# names follows the payload. Every string under a "name" or "fio" key, at any depth; strict
# mode, as lax mode's unwrapping of arrays would give a name once per array around it.
CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(payload jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg(name #>> '{{}}', E'\\n')
    FROM (
        SELECT jsonb_path_query(payload, {_names_path("name")})
        UNION ALL
        SELECT jsonb_path_query(payload, {_names_path("fio")})
    ) AS names(name)
$$
"""


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON sync_inboundevent "
                f"USING gin ({FUNCTION}(payload) gin_trgm_ops)"
            )
    except DatabaseError as error:
        logger.warning("name search index not created", extra={"error": str(error)})
    schema_editor.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(jsonb)")
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {OLD_INDEX} ON sync_inboundevent "
                "USING gin ((payload::text) gin_trgm_ops)"
            )
    except DatabaseError as error:
        logger.warning("payload search index not created", extra={"error": str(error)})


class Migration(migrations.Migration):
    dependencies = [("sync", "0013_event_indexes_for_inserts")]

    operations = [migrations.RunPython(index_create, index_drop)]
