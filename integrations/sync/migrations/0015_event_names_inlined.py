"""The name search's function as one expression, which PostgreSQL inlines.

sync/0014's ``amohub_event_names`` was a query (two strict jsonpath walks, a UNION ALL and
an aggregate). PostgreSQL evaluates an index's expression at every write of a row, not
only at its insert: an event is written three times (the intake's insert, the worker's
claim and its outcome), and each time the function's query was planned and started
afresh. That was an eighth of the database's work during a burst.

The new body is a single expression, so PostgreSQL inlines it into the index and into the
search alike: the ``name`` and ``fio`` strings at any depth, as a JSON array's text
(``["Фамилия Имя", ...]``). Lax mode walks the payload at a third of strict mode's cost;
a name it finds twice (once through each array around it) only repeats trigrams the index
keeps once, and a ``name`` given as an array of strings is searched too (strict mode
skipped it). The index is rebuilt with it.
"""

import importlib

from django.db import migrations

FUNCTION = "amohub_event_names"
INDEX = "event_names_trgm_idx"

CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(payload jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (
        jsonb_path_query_array(payload, 'lax $.**.name ? (@.type() == "string")')
        || jsonb_path_query_array(payload, 'lax $.**.fio ? (@.type() == "string")')
    )::text
$$
"""


def _replace(schema_editor, create_function: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(create_function)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [INDEX])
        (index,) = cursor.fetchone()
    if index is not None:  # none where pg_trgm was missing (sync/0014)
        schema_editor.execute(f"REINDEX INDEX {INDEX}")


def function_inline(apps, schema_editor):
    _replace(schema_editor, CREATE_FUNCTION)


def function_restore(apps, schema_editor):
    previous = importlib.import_module("integrations.sync.migrations.0014_event_names_search_index")
    _replace(schema_editor, previous.CREATE_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("sync", "0014_event_names_search_index")]

    operations = [migrations.RunPython(function_inline, function_restore)]
