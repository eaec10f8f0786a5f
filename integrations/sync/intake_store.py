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

import base64
import functools

from django.core.exceptions import ImproperlyConfigured
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


def request_json(*, common: dict, items: list[dict], due) -> tuple[dict, list[dict]]:
    """A request's events (``events_unsaved(...)``) as JSON values by column, for the
    event loop's insert (``intake_batches.py``): the values the request gives all its
    events, once, and each item's own.

    A column's value is what PostgreSQL reads as that column's value: a time in ISO 8601
    with its offset, an address as text, a JSON field's object as it is, a binary field
    in base64 (``json_columns``). The columns no request sets take their defaults,
    prepared by their model fields once per process. Preparing each value by its model
    field, and sending each column as an array, was most of the intake's insert. The
    request's values are sent once, not with each item: a body of a megabyte with
    hundreds of items would otherwise be sent hundreds of times.
    """
    if set(common) != set(REQUEST_FIELDS):
        raise ValueError(f"A request gives exactly {REQUEST_FIELDS}, not {sorted(common)}.")
    fixed, timed = _defaults_json()
    now = _json_time(timezone.now())
    request = {
        **fixed,
        **dict.fromkeys(timed, now),  # as pre_save sets them
        "flow_id": common["flow"].pk,
        "received_at": _json_time(common["received_at"]),
        # As the field's own preparation: an empty address is none.
        "remote_addr": common["remote_addr"] or None,
        "headers": common["headers"],
        "raw_body": base64.b64encode(common["raw_body"]).decode("ascii"),
        "body_hash": common["body_hash"],
        "next_attempt_at": _json_time(due),
    }
    rows = [
        {
            "item_index": index,
            "payload": item,
            "rdesk_id": _identifier(item, "id"),
            "lead_id": _identifier(item, "lead_id"),
        }
        for index, item in enumerate(items)
    ]
    return request, rows


def _json_time(moment):
    if moment is None:
        return None
    if timezone.is_naive(moment):
        raise ValueError(f"A naive time cannot be stored: {moment!r}.")
    return moment.isoformat()


# The fields each item gives its own value (``_item_fields``), and every field
# ``request_json`` gives a value (the rest take their defaults).
_ITEM_FIELDS = frozenset(_item_fields(0, {}))
_GIVEN = frozenset({*REQUEST_FIELDS, "next_attempt_at", *_ITEM_FIELDS})


@functools.cache
def _defaults_json() -> tuple[dict, tuple[str, ...]]:
    """The JSON value of each column an intake row leaves to its default, by column; and
    the columns set to the time of the insert."""
    db = connections[DEFAULT_DB_ALIAS]
    fixed, timed = {}, []
    for field in insert_fields():
        if field.name in _GIVEN:
            continue
        if _timed(field):
            timed.append(field.column)
            continue
        if field.has_default() and callable(field.default):
            raise ImproperlyConfigured(
                f"{field.name}: a default computed per row is not in the intake's rows."
            )
        value = field.get_db_prep_save(field.get_default(), db)
        if isinstance(value, str):
            value = str(value)  # a choice's member as its plain value
        elif value is not None and not isinstance(value, int):
            raise ImproperlyConfigured(f"{field.name}: {value!r} is not a JSON value.")
        fixed[field.column] = value
    return fixed, tuple(timed)


def _timed(field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


def json_columns() -> list[tuple[str, str, str, bool]]:
    """Each inserted column's name, its type as ``jsonb_to_recordset`` reads it, the
    expression that makes the column's value of it (a binary field comes in base64), and
    whether each item gives its own (else the request gives it)."""
    quote = connection.ops.quote_name
    columns = []
    for field in insert_fields():
        name, own = quote(field.column), field.name in _ITEM_FIELDS
        source = "i" if own else "q"
        if field.get_internal_type() == "BinaryField":
            columns.append((name, "text", f"decode({source}.{name}, 'base64')", own))
        else:
            columns.append((name, field.db_type(connection), f"{source}.{name}", own))
    return columns


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
