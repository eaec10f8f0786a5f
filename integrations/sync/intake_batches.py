"""The ASGI intake's inserts: the items of requests that arrive together, in one statement.

Under a burst most of a request's cost, in the web process and in PostgreSQL, was its own
statement and commit: the round trip, the executor's start, the WAL flush. Here each
request hands its rows to this process's inserters (one per pooled connection) and waits
for them. A free inserter takes every request waiting at that moment, inserts all their
rows with one statement in autocommit, and answers each with its own ids: a request
alone is inserted at once, and under load each commit serves the requests that arrived
while the previous ones ran. Every request is still answered only after its rows are
committed. A statement PostgreSQL refuses is run again request by request, so one bad
request fails alone; a connection the server closed (a restart) is replaced and the
statement run once more.

What the loop hands to Django's synchronous ORM (a refusal's row, the flows' reload) runs
in one thread of the intake's, whose connection is kept like a request's.
"""

import asyncio
import contextvars
import functools
import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from integrations.sync.intake_store import (
    events_insert,
    events_unsaved,
    json_columns,
    request_json,
)
from integrations.sync.models import InboundEvent

INTAKE_APPLICATION_NAME = "amo-hub intake"
# Rows one statement takes at most, and the bodies of its requests: its arrays stay well
# under PostgreSQL's limit for a jsonb value (256 MB).
MOST_ROWS = 1000
MOST_BODY_BYTES = 16 * 1024 * 1024
_orm_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-orm")


async def events_insert_async(*, common: dict, items: list[dict], due) -> list[int]:
    """Inserts a request's events (``events_unsaved``), committed on return; their ids."""
    if not _on_postgresql():
        rows = events_unsaved(common=common, items=items, due=due)
        ids, _ = await in_orm_thread(events_insert, rows, account_id=None)
        return ids
    request, rows = request_json(common=common, items=items, due=due)
    return await (await _inserters()).insert(request, rows, size=len(common["raw_body"]))


@functools.cache
def _on_postgresql() -> bool:
    # Asked once: in the event loop every use of ``connection`` is a context lookup.
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


async def in_orm_thread(function, /, *args, **kwargs):
    """``function(*args, **kwargs)``, run by the intake's ORM thread, off the event loop."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_orm_thread, call)


async def inserters_close() -> None:
    """Closes this process's intake connections (the ASGI lifespan's shutdown)."""
    global _current
    if _current is not None:
        inserters, _current = _current, None
        await inserters.close()
    await in_orm_thread(connections.close_all)


@dataclass
class _Waiting:
    request: dict  # the values the request gives all its events (``request_json``)
    rows: list[dict]  # each item's own
    size: int  # the request's body, in bytes
    ids: asyncio.Future


class _Inserters:
    def __init__(self, pool: AsyncConnectionPool, count: int):
        self.pool = pool
        self.waiting: deque[_Waiting] = deque()
        self.wake = asyncio.Event()
        self.tasks = [asyncio.create_task(self._run()) for _ in range(count)]

    async def insert(self, request: dict, rows: list[dict], *, size: int) -> list[int]:
        waiting = _Waiting(request, rows, size, asyncio.get_running_loop().create_future())
        self.waiting.append(waiting)
        self.wake.set()
        return await waiting.ids

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        # gunicorn lets the requests in flight finish first: none should be left here.
        _answer(list(self.waiting), error=ConnectionError("The intake is shutting down."))
        await self.pool.close()

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            batch = self._take()
            if not self.waiting:
                self.wake.clear()
            if not batch:
                continue
            try:
                await self._insert(batch)
            except asyncio.CancelledError:
                _answer(batch, error=ConnectionError("The intake is shutting down."))
                raise

    def _take(self) -> list[_Waiting]:
        batch, count, size = [], 0, 0
        while self.waiting and (
            not batch
            or (
                count + len(self.waiting[0].rows) <= MOST_ROWS
                and size + self.waiting[0].size <= MOST_BODY_BYTES
            )
        ):
            waiting = self.waiting.popleft()
            batch.append(waiting)
            count += len(waiting.rows)
            size += waiting.size
        return batch

    async def _insert(self, batch: list[_Waiting]) -> None:
        try:
            ids = await self._execute(batch)
        except (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError) as error:
            _answer(batch, error=error)  # the server, not a request: all fail alike
            return
        except Exception as error:  # refused by PostgreSQL, or a value psycopg cannot send
            if len(batch) == 1:
                _answer(batch, error=error)
                return
            for waiting in batch:  # each alone: only the request at fault fails
                await self._insert([waiting])
            return
        _answer(batch, ids=ids)

    async def _execute(self, batch: list[_Waiting]) -> list[int]:
        # Each item names its request by its place in the batch. A value JSON cannot
        # hold fails the batch, then its request alone.
        items = [
            {**row, "request": number}
            for number, waiting in enumerate(batch)
            for row in waiting.rows
        ]
        requests = [{**waiting.request, "request": n} for n, waiting in enumerate(batch)]
        sql = _insert_statement()
        params = [Jsonb(items, dumps=_rows_json), Jsonb(requests, dumps=_rows_json)]
        try:
            return await self._fetch(sql, params)
        except (psycopg.InterfaceError, psycopg.OperationalError):
            await self.pool.check()  # the idle connections the server closed are replaced
            return await self._fetch(sql, params)

    async def _fetch(self, sql: str, params: list) -> list[int]:
        async with self.pool.connection() as conn, asyncio.timeout(settings.HUB_INTAKE_DB_WAIT):
            # A server that stopped answering (no reset, e.g. a network split) would
            # otherwise hold the inserter, and every request behind it, for many minutes.
            # Prepared on the server once per connection: PostgreSQL then neither parses
            # nor plans it again (not behind a pooler that shares server connections).
            cursor = await conn.execute(sql, params, prepare=settings.HUB_INTAKE_PREPARE)
            (ids,) = await cursor.fetchone()
        return ids


def _rows_json(rows: list[dict]) -> bytes:
    """The rows as JSON, by orjson: the standard encoder took a fifth of a request's
    time on text in Cyrillic. (No NaN or infinity reaches here: the intake's parser
    refuses them, and orjson would write them as null.)"""
    try:
        return orjson.dumps(rows)
    except orjson.JSONEncodeError:
        # An integer past 64 bits, which JSON allows: the standard encoder writes it.
        return _ROWS_ENCODER.encode(rows).encode()


_ROWS_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
)


@functools.cache
def _insert_statement() -> str:
    """One statement for any number of requests and items, which come as two JSON arrays
    of objects (``request_json``): its text, and the server's prepared copy, never change,
    and the client encodes each array in one call; the new ids come back in the items'
    order (by request, then by item).

    Sent as arrays, one per column, the values cost more to prepare and encode in Python
    than the rest of the request; PostgreSQL reads the JSON at a fraction of that. As
    ``jsonb`` it is parsed once: as ``json``, each payload was parsed again for its column.
    """
    columns = json_columns()
    quote = connection.ops.quote_name
    number = quote("request")

    def record(own: bool) -> str:
        kinds = [f"{name} {kind}" for name, kind, _, item in columns if item is own]
        return ", ".join([f"{number} integer", *kinds])

    return (
        f"WITH new AS (INSERT INTO {quote(InboundEvent._meta.db_table)} "
        f"({', '.join(name for name, _, _, _ in columns)}) "
        f"SELECT {', '.join(value for _, _, value, _ in columns)} "
        f"FROM jsonb_to_recordset(%s) AS i({record(True)}) "
        f"JOIN jsonb_to_recordset(%s) AS q({record(False)}) ON q.{number} = i.{number} "
        f"ORDER BY i.{number}, i.{quote('item_index')} "
        f"RETURNING {quote('id')}) "
        f"SELECT ARRAY(SELECT id FROM new ORDER BY id)"
    )


def _answer(batch: list[_Waiting], *, ids=None, error=None) -> None:
    start = 0
    for waiting in batch:
        end = start + len(waiting.rows)
        # A request cancelled meanwhile (its caller went away) has nobody to answer.
        if not waiting.ids.done():
            if error is not None:
                waiting.ids.set_exception(error)
            else:
                waiting.ids.set_result(ids[start:end])
        start = end


# This process's inserters (one set per event loop; tests run several loops).
_current: _Inserters | None = None


async def _inserters() -> _Inserters:
    global _current
    loop = asyncio.get_running_loop()
    if _current is None or _current.tasks[0].get_loop() is not loop:
        params = connection.get_connection_params()
        # Django's cursor class binds on the client, for its own synchronous use.
        params.pop("cursor_factory", None)
        # Told apart from Django's own in pg_stat_activity.
        params.setdefault("application_name", INTAKE_APPLICATION_NAME)
        size = max(1, settings.HUB_INTAKE_DB_CONNECTIONS)
        pool = AsyncConnectionPool(
            kwargs={**params, "autocommit": True},
            min_size=size,
            max_size=size,
            open=False,
            name="intake",
            timeout=settings.HUB_INTAKE_DB_WAIT,
        )
        _current = _Inserters(pool, size)
    # Safe and cheap once open; a request that comes while it opens waits for it.
    await _current.pool.open()
    return _current
