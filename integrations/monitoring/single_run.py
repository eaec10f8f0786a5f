"""At most one run at a time of a periodic job, across every worker and host.

Beat queues the alert evaluation every minute; a run slowed by a dead channel or a slow
mail server may still be sending when the next one starts, and both would send the same
messages. A PostgreSQL advisory lock (held by the run's connection, released with it)
lets the second run see the first and stand down. Other databases (SQLite, embedded:
one worker) run unguarded.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# Keys of the hub's advisory locks (any 64-bit number no other lock of the database uses).
ALERTS_LOCK = 0x616D6F68_75620001  # "amohub" 1


@contextmanager
def run_alone(key: int) -> Iterator[bool]:
    """Yields True if this run holds ``key``'s lock, False if another run does."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
