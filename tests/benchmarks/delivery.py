"""Delivery benchmark: bursts and idle latency against the emulator at AmoCRM's 7 req/s.

One real Celery worker process (``--pool``/``--concurrency``, threads x 4 by default)
drains into the emulator, which answers 429 to an 8th request within a second as
AmoCRM does. Prints, for a 1,000-event burst on 1,000 leads and a 10,000-event burst on
10,000 leads: the drain time, the AmoCRM requests per delivered update, the 429s and
403s; then the idle webhook-to-PATCH latency (p50/p99) and the worker's peak RSS.

A burst is stored the way the intake stores events (one row per item, its own raw
body) in one transaction, then nudged as the intake does on commit; the drain time runs
from that commit until the last event is delivered. The idle latency runs from the
webhook POST to the emulator receiving the PATCH. Uses PostgreSQL and Redis:

    make bench        # or: .venv/bin/python tests/benchmarks/delivery.py --pool solo

It creates (and then drops) its own database and Redis keys, so it never touches data.
"""

import argparse
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))
RUN = f"bench{os.getpid()}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# A PostgreSQL URL is the production mode, which needs its secrets (the worker started
# below inherits them); the requests go over plain HTTP.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HUB_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("HUB_HTTPS", "false")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/amohub_{RUN}")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("HUB_REDIS_PREFIX", f"amohub-{RUN}:")
os.environ.setdefault("AMOCRM_RATE_LIMIT", "7")

FIRST_LEAD = 61000001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="threads", choices=["threads", "solo", "prefork"])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--bursts", default="1000,10000", help="burst sizes, comma-separated")
    parser.add_argument("--idle", type=int, default=40, help="idle single events to time")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    worker = None
    try:
        from integrations.amocrm.emulator.server import EmulatorServer

        with EmulatorServer(rate_limit=7) as emulator:
            flow = _flow(emulator)
            worker = _worker(connection.settings_dict["NAME"], args.pool, args.concurrency)
            print(
                f"worker: --pool={args.pool} --concurrency={args.concurrency}; "
                f"emulator at 7 req/s; batch size {os.environ.get('HUB_BATCH_SIZE', 50)}"
            )
            sampler = _RssSampler(worker.pid)
            sampler.start()
            for size in (int(n) for n in args.bursts.split(",") if n):
                _burst(emulator, flow, size)
            _idle(emulator, flow, args.idle)
            sampler.stop()
            print(f"worker peak RSS: {sampler.peak_mb:.0f} MB (the process and its children)")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        _redis_forget()


def _flow(emulator):
    from integrations.amocrm.tokens import token_store
    from integrations.sync.models import Flow
    from tests.factories import AccountFactory

    account = AccountFactory(
        base_url=emulator.base_url,
        client_id="emulator-client",
        client_secret="emulator-secret",
        redirect_uri="http://127.0.0.1:8000/amocrm/oauth/callback/",
    )
    token_store(account=account, pair=emulator.state.issue_token())
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()
    return flow


def _worker(database: str, pool: str, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}"}
    log = open(PROJECT / "var" / f"{RUN}-worker.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hub",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in (PROJECT / "var" / f"{RUN}-worker.log").read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start; see var/" + f"{RUN}-worker.log")
        time.sleep(0.2)
    return process


def _burst(emulator, flow, size: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from integrations.sync.delivery import events_enqueue
    from integrations.sync.models import EventStatus, InboundEvent
    from tests.integrations.rdesk.payloads import load_item

    first = FIRST_LEAD + _burst.offset
    _burst.offset += size
    for n in range(size):
        emulator.state.add_lead(id=first + n)
    sample = load_item("rdesk-booked.json")
    before = _counts(emulator)
    now = timezone.now()
    rows = []
    for n in range(size):
        payload = {**sample, "id": 800000 + n, "lead_id": first + n}
        raw = json.dumps([payload], ensure_ascii=False).encode()
        rows.append(
            InboundEvent(
                flow=flow,
                received_at=now,
                raw_body=raw,
                body_hash=hashlib.sha256(raw).hexdigest(),
                payload=payload,
                rdesk_id=str(payload["id"]),
                lead_id=str(first + n),
                next_attempt_at=now,
            )
        )
    with transaction.atomic():
        ids = [event.pk for event in InboundEvent.objects.bulk_create(rows, batch_size=1000)]
        transaction.on_commit(lambda: events_enqueue(ids))
    started = time.monotonic()
    pending = InboundEvent.objects.filter(pk__in=ids).exclude(status=EventStatus.DELIVERED)
    while pending.exists():
        if time.monotonic() - started > 600:
            raise RuntimeError(f"burst of {size} not drained in 10 minutes")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    after = _counts(emulator)
    calls = after["requests"] - before["requests"]
    print(
        f"burst of {size:,} events on {size:,} leads: drained in {elapsed:.1f} s "
        f"({size / elapsed:.0f} updates/s); {calls} AmoCRM requests = "
        f"{calls / size:.3f} per delivered update; "
        f"{after['429'] - before['429']} x 429, {after['403'] - before['403']} x 403"
    )


_burst.offset = 0


def _counts(emulator) -> dict:
    statuses = [r["status"] for r in emulator.state.requests]
    return {
        "requests": len(statuses),
        "429": statuses.count(429),
        "403": statuses.count(403),
    }


def _idle(emulator, flow, count: int) -> None:
    from django.test import Client

    from tests.integrations.rdesk.payloads import load_item

    client = Client()
    sample = load_item("rdesk-booked.json")
    latencies = []
    for n in range(count):
        time.sleep(0.5)  # idle: the previous delivery is long done
        seen = len(emulator.state.requests)
        body = json.dumps([{**sample, "id": 900000 + n}], ensure_ascii=False)
        posted = time.monotonic()
        response = client.post("/zdrav/booked", body, content_type="application/json")
        assert response.status_code == 200, response.content
        deadline = posted + 10
        while len(emulator.state.requests) == seen and time.monotonic() < deadline:
            time.sleep(0.001)
        patch = next(r for r in emulator.state.requests[seen:] if r["method"] == "PATCH")
        latencies.append(patch["time"] - posted)  # the emulator's clock: time.monotonic()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"idle single event, webhook to PATCH ({count} events): "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )


class _RssSampler(threading.Thread):
    """The worker's resident memory, with its children's, sampled every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.2):
            self.peak_mb = max(self.peak_mb, _rss_mb(self.pid))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _rss_mb(pid: int) -> float:
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _redis_forget() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    keys = list(client.scan_iter(match=f"{os.environ['HUB_REDIS_PREFIX']}*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    main()
