"""Intake benchmark: how fast webhooks are stored and answered, and what it costs in memory.

Posts RDESK's sample booking N times through the full Django stack (middleware, view,
one INSERT per item, enqueue on commit to the configured broker) and prints throughput,
latency percentiles and the process's peak resident memory. Run against the database and broker you
want to measure, e.g.:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amohub_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/11 \\
    .venv/bin/python tests/benchmarks/intake.py --requests 2000

It creates (and then drops) its own database, so it never touches real data.
"""

import argparse
import os
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Any DATABASE_URL is the production mode, which needs its secrets; the requests go over
# plain HTTP.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HUB_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("HUB_HTTPS", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from integrations.sync.models import InboundEvent

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        body = (PROJECT / "tests/fixtures/rdesk/rdesk-booked.json").read_bytes()
        client = Client()
        client.post("/zdrav/booked", body, content_type="application/json")  # warm up
        latencies = []
        started = time.perf_counter()
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.post("/zdrav/booked", body, content_type="application/json")
            latencies.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.content
        elapsed = time.perf_counter() - started
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stored = InboundEvent.objects.count()
        latencies.sort()
        print(f"database: {connection.vendor}; broker: {os.environ.get('CELERY_BROKER_URL')}")
        print(f"requests: {args.requests} in {elapsed:.2f}s = {args.requests / elapsed:.0f} req/s")
        p50, p95, p99 = (
            statistics.median(latencies) * 1000,
            latencies[int(len(latencies) * 0.95)] * 1000,
            latencies[int(len(latencies) * 0.99)] * 1000,
        )
        print(
            f"latency ms: p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f}  "
            f"max {latencies[-1] * 1000:.2f}"
        )
        print(f"peak RSS of the process: {peak_rss:.0f} MiB; events stored: {stored}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
