"""The drain's CPU path, measured in-process: events/s with no rate limit, and a profile.

Stores ``--events`` booked events on as many leads (as ``make bench`` does), then drains
them in this process with ``account_drain`` against the emulator running in a child
process with no rate limit, the hub's limiter out of the way and no nudges sent. What
is left is the hub's own work per event: claiming, validating, transforming, building
the batch, and recording the outcome. Uses PostgreSQL (its own database, then dropped):

    .venv/bin/python tests/benchmarks/drain_cpu.py --events 3000
    .venv/bin/python tests/benchmarks/drain_cpu.py --events 3000 --profile var/drain.prof
"""

import argparse
import cProfile
import hashlib
import json
import multiprocessing
import os
import pstats
import resource
import secrets
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))
RUN = f"drain{os.getpid()}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Any DATABASE_URL is the production mode, which needs its secrets; the requests go over
# plain HTTP.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HUB_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("HUB_HTTPS", "false")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/amohub_{RUN}")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["AMOCRM_RATE_REDIS_URL"] = ""
os.environ["AMOCRM_RATE_LIMIT"] = "1000000"

FIRST_LEAD = 71000001


def _emulator(conn, leads: int) -> None:
    """The child: an emulator without a rate limit holding ``leads`` leads."""
    from integrations.amocrm.emulator.server import EmulatorServer

    with EmulatorServer(rate_limit=0) as emulator:
        for n in range(leads):
            emulator.state.add_lead(id=FIRST_LEAD + n)
        conn.send((emulator.base_url, emulator.state.issue_token()))
        conn.recv()  # until the parent is done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--profile", help="write a cProfile dump here and print its top")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    import django

    django.setup()
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_emulator, args=(theirs, args.events), daemon=True
    )
    child.start()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        base_url, pair = ours.recv()
        account, flow = _flow(base_url, pair)
        ids = _store(flow, args.events)
        cpu_before = _cpu()
        seconds = _drain(account.pk, args.profile, args.top)
        cpu = _cpu() - cpu_before
        _check(ids)
        print(
            f"drained {args.events:,} events in {seconds:.2f} s: "
            f"{args.events / seconds:.0f} events/s (in-process, no rate limit); "
            f"this process's CPU {cpu:.2f} s = {cpu / args.events * 1000:.2f} ms per event "
            f"({args.events / cpu:.0f} events per CPU second)"
        )
    finally:
        ours.send("done")
        child.join(timeout=10)
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def _cpu() -> float:
    """CPU seconds (user and system) of this process, its threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _flow(base_url, pair):
    from integrations.amocrm.tokens import token_store
    from integrations.sync.models import Flow
    from tests.factories import AccountFactory

    account = AccountFactory(
        base_url=base_url,
        client_id="emulator-client",
        client_secret="emulator-secret",
        redirect_uri="http://127.0.0.1:8000/amocrm/oauth/callback/",
    )
    token_store(account=account, pair=pair)
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()
    return account, flow


def _store(flow, size: int) -> list[int]:
    from django.utils import timezone

    from integrations.sync.models import InboundEvent
    from tests.integrations.rdesk.payloads import load_item

    sample = load_item("rdesk-booked.json")
    now = timezone.now()
    rows = []
    for n in range(size):
        payload = {**sample, "id": 800000 + n, "lead_id": FIRST_LEAD + n}
        raw = json.dumps([payload], ensure_ascii=False).encode()
        rows.append(
            InboundEvent(
                flow=flow,
                received_at=now,
                raw_body=raw,
                body_hash=hashlib.sha256(raw).hexdigest(),
                payload=payload,
                rdesk_id=str(payload["id"]),
                lead_id=str(FIRST_LEAD + n),
                next_attempt_at=now,
            )
        )
    return [e.pk for e in InboundEvent.objects.bulk_create(rows, batch_size=1000)]


def _drain(account_id: int, profile: str | None, top: int) -> float:
    from integrations.sync import delivery

    delivery.account_nudge = lambda **kwargs: delivery.SENT  # no broker: one drain does all
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    delivery.account_drain(account_id=account_id, budget=3600)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler:
        profiler.dump_stats(profile)
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
    return seconds


def _check(ids: list[int]) -> None:
    from integrations.sync.models import EventStatus, InboundEvent

    left = InboundEvent.objects.filter(pk__in=ids).exclude(status=EventStatus.DELIVERED)
    if left.exists():
        print(f"NOT DELIVERED: {left.count()}, e.g. {left.values_list('status', 'last_error')[:3]}")


if __name__ == "__main__":
    main()
