"""Storing a request's accepted items: the intake's hot path, in one database round trip.

At RDESK's burst rate most of an intake request's cost was the ORM's work around one
INSERT (the query compiler, BEGIN and COMMIT, a second query for the nudge mark). On
PostgreSQL the items are inserted, and the account's nudge mark read, by one statement
(a data-modifying WITH): a single statement is atomic by itself, so in autocommit it is
committed when it returns, with no BEGIN or COMMIT round trips. The values are prepared by
the model fields themselves (``get_db_prep_save``), so every column is written as
``bulk_create`` would write it. Other databases (SQLite, in the embedded mode) take the
ORM's ``bulk_create`` and read the mark separately.
"""

import functools

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone

from integrations.sync.delivery import nudge_mark_read
from integrations.sync.models import AccountDrain, InboundEvent


def events_insert(rows: list[InboundEvent], *, account_id: int | None):
    """Inserts ``rows`` (unsaved events); returns their ids and the account's nudge mark.

    The mark (``AccountDrain.nudged_at``, None when unknown) tells the caller whether a
    nudge is already on its way, so that under load no further query is needed.
    """
    if connection.vendor != "postgresql":
        return _insert_orm(rows, account_id=account_id)
    params = [value for values in rows_values(rows) for value in values]
    return once_more_on_a_new_connection(
        lambda: _fetch(_insert_sql(len(rows)), [*params, account_id])
    )


def events_unsaved(*, common: dict, items: list[dict], due) -> list[InboundEvent]:
    """One unsaved ``received`` event per item, due at ``due``.

    ``common`` holds the fields every item's event shares: ``REQUEST_FIELDS``.
    """
    return [
        InboundEvent(**common, **_item_fields(index, item), next_attempt_at=due)
        for index, item in enumerate(items)
    ]


# The fields a request gives all its events; each item gives its own ``_item_fields``,
# and every other column takes its default.
REQUEST_FIELDS = ("flow", "received_at", "remote_addr", "headers", "raw_body", "body_hash")


def _item_fields(index: int, item: dict) -> dict:
    return {
        "item_index": index,
        "payload": item,
        "rdesk_id": _identifier(item, "id"),
        "lead_id": _identifier(item, "lead_id"),
    }


def _identifier(item: dict, key: str) -> str:
    value = item.get(key)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)[:64]
    return ""


@functools.cache
def insert_fields() -> list:
    """The columns an insert writes: every one but the id."""
    return [f for f in InboundEvent._meta.concrete_fields if not f.primary_key]


def rows_prepared(*, common: dict, items: list[dict], due) -> list[list]:
    """``rows_values(events_unsaved(...))`` without building the events.

    Each model field still prepares each value, but the defaults are prepared once per
    process and the request's own values once per request: building an event per item,
    only to read its values back, was a good part of the intake's time.
    """
    if set(common) != set(REQUEST_FIELDS):
        raise ValueError(f"A request gives exactly {REQUEST_FIELDS}, not {sorted(common)}.")
    db, fixed, varying = _defaults_prepared()
    now = timezone.now()
    request_values = {
        **fixed,
        **{
            field.attname: field.get_db_prep_save(_value(field, common, due, now), db)
            for field in varying
            if field.name not in _ITEM_NAMES
        },
    }
    rows = []
    for index, item in enumerate(items):
        values = dict(request_values)
        for name, value in _item_fields(index, item).items():
            field = InboundEvent._meta.get_field(name)
            values[field.attname] = field.get_db_prep_save(value, db)
        rows.append([values[field.attname] for field in insert_fields()])
    return rows


_ITEM_NAMES = frozenset(_item_fields(0, {}))


def _value(field, common: dict, due, now):
    if field.name in common:
        value = common[field.name]
        return value.pk if field.is_relation else value
    if field.name == "next_attempt_at":
        return due
    if _timed(field):
        return now  # as pre_save sets it
    return field.get_default()


def _timed(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


@functools.cache
def _defaults_prepared() -> tuple:
    """The database the values are prepared for; the prepared value of each column that
    is the same in every intake row, by attname; and the fields whose values are not
    (given, timed or with a callable default).

    The database is kept: preparing values reads only its operations, never its
    connection, and in an event loop every task asking ``connections`` gets a new one.
    """
    db = connections[DEFAULT_DB_ALIAS]
    fixed, varying = {}, []
    given = {*REQUEST_FIELDS, *_ITEM_NAMES, "next_attempt_at"}
    for field in insert_fields():
        if field.name in given or _timed(field) or callable(field.default):
            varying.append(field)
        else:
            fixed[field.attname] = field.get_db_prep_save(field.get_default(), db)
    return db, fixed, varying


def rows_values(rows: list[InboundEvent]) -> list[list]:
    """Each row's values for ``insert_fields``, as its model fields prepare them (as
    ``bulk_create`` would write them)."""
    fields = insert_fields()
    # Looked up once: ``connection`` is a proxy whose every use is a context lookup.
    db = connections[DEFAULT_DB_ALIAS]
    return [
        [field.get_db_prep_save(field.pre_save(row, add=True), db) for field in fields]
        for row in rows
    ]


@functools.lru_cache(maxsize=64)
def _insert_sql(count: int) -> str:
    """The rows and the account's nudge mark in one statement; its text depends only on
    the number of rows. The sequence numbers the rows in the order of VALUES, so the
    sorted ids are in that order."""
    fields = insert_fields()
    quote = connection.ops.quote_name
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"WITH new AS (INSERT INTO {quote(InboundEvent._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row_sql] * count)} RETURNING {quote('id')}) "
        f"SELECT ARRAY(SELECT id FROM new ORDER BY id), "
        f"(SELECT {quote('nudged_at')} FROM {quote(AccountDrain._meta.db_table)} "
        f"WHERE {quote('account_id')} = %s)"
    )


def once_more_on_a_new_connection(query):
    """``query()``; again on a new connection if the server closed the kept one.

    The intake's connections are kept across requests without Django's health check (a
    SELECT 1 per request): after a PostgreSQL restart its queries (the flows' reload and
    the INSERT) meet a closed connection once, and are run again instead of failing.
    Outside a transaction only, where nothing else is lost with the old connection.
    """
    try:
        return query()
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        connection.close()
        return query()


def _fetch(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids, nudged_at = cursor.fetchone()
    return ids, nudged_at


def _insert_orm(rows: list[InboundEvent], *, account_id: int | None):
    with transaction.atomic():
        ids = [event.pk for event in InboundEvent.objects.bulk_create(rows)]
    return ids, nudge_mark_read(account_id)
