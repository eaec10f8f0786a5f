"""Intake over HTTP: gunicorn (hub/gunicorn.conf.py) on PostgreSQL with a Celery worker.

Starts the hub's gunicorn as production does (its own database, created and dropped, and
its own Redis keys), a Celery worker delivering to the AmoCRM emulator, then posts the
sample booking with ``wrk -t1 -c16 -d20s`` and prints requests/s, p50/p99, the 200s
gunicorn sent against the events stored (every 200 has its event; a few more may be
stored for requests whose answer wrk no longer read at its deadline), the web processes'
total resident memory (RSS summed, and PSS, which counts pages the forked workers share
once) and the CPU each kind of process used, which says where the time goes:

    make bench-intake       # or: .venv/bin/python tests/benchmarks/intake_wrk.py --help

GUNICORN_CMD_ARGS, WEB_CONCURRENCY, GUNICORN_WORKER_CLASS and GUNICORN_THREADS are passed
on to gunicorn, so other worker classes and counts are measured the same way.
"""

import argparse
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))
from tests.benchmarks.environment import bench_environment  # noqa: E402

RUN = f"benchintake{os.getpid()}"
bench_environment(RUN)
SAMPLE = PROJECT / "tests/fixtures/rdesk/rdesk-booked.json"
LUA = Path(__file__).with_name("intake.lua")
# Events already in the table when the run starts.
HISTORY = 50_000
ACCESS_LOG = PROJECT / "var" / f"{RUN}-access.log"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--path", default="/zdrav/booked")
    parser.add_argument(
        "--without-worker", action="store_true", help="no Celery worker (to compare)"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY,
        help=f"events already delivered before the run, then analyzed (default {HISTORY})",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    from integrations.amocrm.emulator.server import EmulatorServer
    from integrations.sync.models import InboundEvent
    from tests.benchmarks.delivery import _flow, _redis_forget, _worker

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    database = connection.settings_dict["NAME"]
    web = worker = None
    (PROJECT / "var").mkdir(exist_ok=True)
    try:
        with EmulatorServer(rate_limit=7) as emulator:
            flow = _flow(emulator)
            emulator.state.add_lead(id=23392663)  # the sample's lead
            _history(flow, args.history)
            if not args.without_worker:
                worker = _worker(database, "threads", 4)
            port = _free_port()
            web = _gunicorn(database, port)
            url = f"http://127.0.0.1:{port}{args.path}"
            _wrk(url, "-c2", "-d2s")  # warm up: connections opened, code paths loaded
            time.sleep(1)  # the warm-up's last requests finish
            before, logged_before = InboundEvent.objects.count(), _logged_200s()
            cpu_before, machine_before = _cpu_seconds(web.pid), _cpu_by_kind()
            sampler = _Sampler(web.pid)
            sampler.start()
            started = time.monotonic()
            output = _wrk(url, f"-c{args.connections}", f"-d{args.duration}")
            elapsed = time.monotonic() - started
            machine = _cpu_by_kind(machine_before)
            sampler.stop()
            time.sleep(1)  # requests wrk left unread still finish and are logged
            stored = InboundEvent.objects.count() - before
            logged = _logged_200s() - logged_before
            cpu = _cpu_seconds(web.pid) - cpu_before
            _report(output, stored, logged, sampler, args)
            print(f"web processes' CPU: {cpu * 1000 / max(1, logged):.2f} ms per request")
            print(
                f"CPU used in {elapsed:.1f} s (of {os.cpu_count() * elapsed:.0f} s on "
                f"{os.cpu_count()} cores): "
                + ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in machine.items())
            )
    finally:
        for process in (web, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        connection.close()
        connection.creation.destroy_test_db(database, verbosity=0)
        _redis_forget()


def _history(flow, count: int) -> None:
    """``count`` delivered events of other leads, then the table vacuumed and analyzed:
    the database of a hub in service, whose planner knows its tables. A table new and
    never analyzed (autovacuum looks at it once a minute) gets other plans for the
    workers' queries than any database in service would."""
    from django.db import connection

    from integrations.sync.models import InboundEvent

    body = SAMPLE.read_bytes()
    payload = InboundEvent.payload.field.get_db_prep_save(json.loads(body)[0], connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sync_inboundevent (flow_id, received_at, remote_addr, headers, "
            "raw_body, body_hash, item_index, payload, rdesk_id, lead_id, status, attempts, "
            "next_attempt_at, last_error, delivered_at, attempts_at_replay, updated_at) "
            "SELECT %s, now() - n * interval '1 minute', '127.0.0.1', '{}', %s, %s, 0, %s, "
            "n::text, (1000000 + n %% 5000)::text, 'delivered', 1, NULL, '', "
            "now() - n * interval '1 minute', 0, now() "
            "FROM generate_series(1, %s) AS n",
            [flow.pk, body, hashlib.sha256(body).hexdigest(), payload, count],
        )
        cursor.execute("VACUUM ANALYZE sync_inboundevent")
        # Its WAL written out now, not by a checkpoint in the middle of the run.
        cursor.execute("CHECKPOINT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(database: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESS_LOG": str(ACCESS_LOG),
    }
    log = open(PROJECT / "var" / f"{RUN}-web.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hub/gunicorn.conf.py"],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start; see var/{RUN}-web.log") from None
            time.sleep(0.2)
    return process


def _wrk(url: str, *options: str) -> str:
    command = ["wrk", "-t1", *options, "--latency", "-s", str(LUA), url, "--", str(SAMPLE)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _logged_200s() -> int:
    """200s gunicorn answered, by its access log (wrk leaves its last requests unread)."""
    if not ACCESS_LOG.exists():
        return 0
    return ACCESS_LOG.read_text().count('HTTP/1.1" 200 ')


def _report(output: str, stored: int, logged: int, sampler, args) -> None:
    total = int(re.search(r"(\d+) requests in", output).group(1))
    failed = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    errors = re.search(r"Socket errors: (.*)", output)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = re.search(r"\s50%\s+(\S+)", output).group(1)
    p99 = re.search(r"\s99%\s+(\S+)", output).group(1)
    items = 1  # the sample body holds one booking
    print(
        f"gunicorn: {os.environ.get('WEB_CONCURRENCY', '(conf)')} workers, class "
        f"{os.environ.get('GUNICORN_WORKER_CLASS', '(conf)')}, "
        f"threads {os.environ.get('GUNICORN_THREADS', '(conf)')}; "
        f"GUNICORN_CMD_ARGS={os.environ.get('GUNICORN_CMD_ARGS', '')!r}"
    )
    print(f"wrk -t1 -c{args.connections} -d{args.duration} {args.path}")
    print(f"requests/s: {rate:.0f}; latency p50 {p50}, p99 {p99}")
    print(
        f"wrk read {total} answers ({total - failed} 2xx, {failed} other"
        f"{'; socket errors: ' + errors.group(1) if errors else ''}); gunicorn sent {logged} "
        f"x 200 (the rest went to connections wrk had closed at its deadline)"
    )
    unread = stored - logged * items
    verdict = (
        f"every 200 stored; {unread} more stored whose answers wrk did not wait for"
        if 0 <= unread <= args.connections * items
        else "NOT every 200 stored"
        if unread < 0
        else "MORE stored than requests in flight"
    )
    print(f"events stored: {stored}; 200s sent x {items} item(s): {logged * items} ({verdict})")
    print(f"web processes' peak memory: RSS {sampler.rss:.0f} MB in all, PSS {sampler.pss:.0f} MB")


def _rss_mb(pid: int) -> float:
    from tests.benchmarks.delivery import _rss_mb

    return _rss_mb(pid)


class _Sampler(threading.Thread):
    """The web processes' (master and workers) memory: RSS every 0.2 s, PSS every 2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.rss = self.pss = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        samples = 0
        while not self._halt.wait(0.2):
            self.rss = max(self.rss, _rss_mb(self.pid))
            # PSS only every 2 s: reading it walks every page of the web processes (about
            # 6 ms of CPU each time, under their memory map's lock), work the bench would
            # otherwise take from the processes it measures.
            if samples % 10 == 0:
                self.pss = max(self.pss, _pss_mb(self.pid))
            samples += 1

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of the web processes (master and workers) so far."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    ticks = 0
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# Whose CPU is counted, by what the command line holds.
_KINDS = {"gunicorn": "web", "celery": "worker", "postgres": "PostgreSQL", "redis": "Redis"}
_BENCH = "bench (emulator, wrk)"


def _cpu_by_kind(since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds of every process on the machine by kind (web, worker...); the bench's
    own count the emulator and wrk (a child it waited for). With ``since``, what was used
    after it."""
    totals = dict.fromkeys([*_KINDS.values(), _BENCH, "other"], 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(entry.name) == os.getpid():
            # utime, stime and those of the children it waited for (wrk, once it ended).
            totals[_BENCH] += sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
            continue
        kind = next((k for word, k in _KINDS.items() if word in command), "other")
        # With the children it reaped: a PostgreSQL session that ended during the run
        # (a worker's connection, autovacuum) is counted in the postmaster's.
        totals[kind] += sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
    # Time the host gave other machines (a virtual machine's "steal"): the figures of a
    # run with much of it are low for reasons outside the hub.
    totals["stolen by the host"] = int(Path("/proc/stat").read_text().split()[8]) / tick
    if since is None:
        return totals
    return {kind: totals[kind] - since.get(kind, 0.0) for kind in totals}


def _pss_mb(pid: int) -> float:
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for each in pids:
        try:
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(
            int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
        )
    return total / 1024


if __name__ == "__main__":
    main()
