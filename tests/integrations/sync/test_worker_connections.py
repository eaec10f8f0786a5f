"""A Celery worker keeps its PostgreSQL connection from task to task, as a web thread
does from request to request (CELERY_DB_REUSE_MAX, hub/celery.py)."""

import time

import pytest
from django.db import connection

from integrations.sync.tasks import drain_account

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
TASKS = 6


def sessions_opened() -> int:
    """Sessions opened on the test database so far (PostgreSQL counts each at its end,
    or when its statistics are next sent)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def wait_for_tasks(worker, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.log().count("succeeded in") < count:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)


def test_the_worker_opens_no_new_session_per_task(worker):
    drain_account.delay(None)
    wait_for_tasks(worker, 1)
    time.sleep(0.5)  # a session that ended is counted as its process exits
    before = sessions_opened()

    for _ in range(TASKS):
        drain_account.delay(None)
    wait_for_tasks(worker, 1 + TASKS)
    time.sleep(0.5)

    assert sessions_opened() - before <= 1
