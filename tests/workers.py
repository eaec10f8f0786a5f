"""End-to-end test support: a real Celery worker process on the test database and Redis,
and what tests wait for and read back from the emulator."""

import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.db import connection

from integrations.sync.models import InboundEvent

PROJECT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    user = s.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{s['NAME']}"


class WorkerProcess:
    """``celery -A hub worker`` in a child process; ``stop()`` ends it."""

    def __init__(
        self,
        *,
        concurrency: int = 1,
        extra_env: dict | None = None,
        name: str = "worker",
        wait: bool = True,
    ):
        self.log_path = PROJECT / "var" / f"test-{name}-{os.getpid()}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": os.environ["HUB_TEST_REDIS_URL"],
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hub",
                "worker",
                "--pool=threads" if concurrency > 1 else "--pool=solo",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                f"--hostname={name}-{os.getpid()}@%h",
            ],
            cwd=PROJECT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no cleanup, no acknowledgement, leases left behind."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            self._log.close()
            self.log_path.unlink(missing_ok=True)
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


def redis_forget() -> None:
    """Deletes this run's Redis keys (queues, rate windows); other runs' keys stay."""
    client = redis.Redis.from_url(os.environ["HUB_TEST_REDIS_URL"])
    keys = list(client.scan_iter(match=f"{os.environ['HUB_REDIS_PREFIX']}*", count=1000))
    if keys:
        client.delete(*keys)


def wait_for_status(status: str, timeout: float = 30.0) -> InboundEvent:
    """The newest event, once it reaches ``status`` (the worker runs in another process)."""
    deadline = time.monotonic() + timeout
    event = None
    while time.monotonic() < deadline:
        event = InboundEvent.objects.order_by("-id").first()
        if event is not None and event.status == status:
            return event
        time.sleep(0.2)
    raise AssertionError(f"no event reached {status}; last: {event and event.status}")


def field_values(lead: dict) -> dict[int, list]:
    """A lead's custom field values by field id, as AmoCRM returns them."""
    return {f["field_id"]: [v["value"] for v in f["values"]] for f in lead["custom_fields_values"]}
