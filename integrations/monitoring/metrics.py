"""The counters that live in processes: intake answers, AmoCRM calls, waits, deliveries.

Why prometheus-client's multiprocess mode and not figures derived from the database:
the intake's answers (404s, 413s), the rate limiter's waits and refreshes that failed
before anything was stored leave no row behind, and counting millions of
``DeliveryAttempt`` rows at every scrape would cost more than the deliveries. So each
process (gunicorn worker, Celery worker) counts in memory-mapped files under
``PROMETHEUS_MULTIPROC_DIR``, a directory the web and worker containers share, and
``/metrics`` adds them up (``collectors.py`` adds what the database knows at scrape time).

Files are named by host name and process id, not the process id alone: containers each
number their processes from 1, and two processes writing one file would corrupt it.
When a process ends, its counts are folded into one archive file per host
(``process_files_archive``, from gunicorn's ``child_exit`` and Celery's shutdown), so the
totals stay and the directory holds only live processes' files and the archives; scrapes
and archiving take a file lock so that a scrape never sees a count twice or not at all.
(prometheus-client's own ``mark_process_dead`` only forgets live gauges, of which there
are none here.)

Each instrumented module makes one call here; labels are bounded (flow names, route
templates such as ``/api/v4/leads/{id}``, status codes, a few outcomes).
"""

import fcntl
import functools
import glob
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from prometheus_client import Counter, Histogram, values
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

# Read once: the identifier is asked for at every count (to notice a fork), and a host
# name does not change under a running process.
_HOST = socket.gethostname()


def process_identifier(pid: int | None = None) -> str:
    """The name the files of this process (or of process ``pid`` on this host) carry."""
    return f"{_HOST}-{os.getpid() if pid is None else pid}"


# Before the first metric is made: its files go to the shared directory (also when this
# module is the first to read the settings, as in gunicorn's master), under a name no
# other container's process can have.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
# A fresh checkout has no var/ yet: any command (migrate, check) may be the first to count.
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


INTAKE_REQUESTS = Counter(
    "amohub_intake_requests",
    "Requests RDESK made to the intake, by flow and HTTP status of the answer.",
    ["flow", "status"],
)
DELIVERY_LATENCY = Histogram(
    "amohub_delivery_latency_seconds",
    "Time from an event's arrival (or replay) to its delivery to AmoCRM.",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 72 * 3600),
)
AMOCRM_CALLS = Counter(
    "amohub_amocrm_calls",
    "Calls made to AmoCRM, by method, route and HTTP status ('none': no answer).",
    ["method", "route", "status"],
)
RATE_WAIT = Histogram(
    "amohub_amocrm_rate_wait_seconds",
    "Time a call waited for its turn under AmoCRM's rate limit.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
TOKEN_REFRESHES = Counter(
    "amohub_amocrm_token_refreshes",
    "Refreshes of AmoCRM token pairs, by outcome (refreshed, refused, failed).",
    ["outcome"],
)

_ID_SEGMENT = re.compile(r"/[0-9]+(?=/|$)")


def route_template(url: str) -> str:
    """The path of a call's URL with ids replaced: ``/api/v4/leads/{id}``."""
    return _ID_SEGMENT.sub("/{id}", urlsplit(url).path) or "/"


def intake_answered(flow: str, status: int) -> None:
    """The intake answered RDESK with ``status`` on ``flow``'s path (a flow's name)."""
    _intake_requests(flow, status).inc()


@functools.lru_cache(maxsize=1024)
def _intake_requests(flow: str, status: int):
    # The labelled child, found once: the lookup (a lock, a key) cost as much as the count.
    return INTAKE_REQUESTS.labels(flow=flow, status=str(status))


def amocrm_call_observed(call) -> None:
    """One finished ``ApiCall`` of the AmoCRM client."""
    status = str(call.status) if call.status is not None else "none"
    AMOCRM_CALLS.labels(method=call.method, route=route_template(call.url), status=status).inc()


def rate_wait_observed(seconds: float) -> None:
    RATE_WAIT.observe(max(0.0, seconds))


def token_refresh_observed(outcome: str) -> None:
    """``refreshed``, ``refused`` (AmoCRM said no: disconnected) or ``failed`` (no answer)."""
    TOKEN_REFRESHES.labels(outcome=outcome).inc()


def deliveries_observed(events, *, delivered_at: datetime) -> None:
    """Events just delivered: each one's time from arrival (or its replay) to now."""
    for event in events:
        started = event.replayed_at or event.received_at
        DELIVERY_LATENCY.observe(max(0.0, (delivered_at - started).total_seconds()))


# --- the files of processes that ended ---------------------------------------------------


@contextmanager
def _files_locked(directory: str, mode: int) -> Iterator[None]:
    """A lock on the directory's files: shared to read them, exclusive to archive."""
    with open(os.path.join(directory, "archive.lock"), "a") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _directory() -> str:
    return settings.PROMETHEUS_MULTIPROC_DIR


def process_files_archive(pid: int | None = None) -> int:
    """Folds an ended process's counts into its host's archive files; returns how many files.

    gunicorn replaces workers (``--max-requests``) and Celery may replace its processes:
    without this, every process ever started would leave files that each scrape reads.
    Called from gunicorn's ``child_exit`` hook (in the master) and at Celery's shutdown.
    """
    directory = _directory()
    ended = process_identifier(pid)
    archive = f"archive-{_HOST}"
    folded = 0
    with _files_locked(directory, fcntl.LOCK_EX):
        for path in glob.glob(os.path.join(directory, f"*_{ended}.db")):
            kind = os.path.basename(path)[: -len(f"_{ended}.db")]
            if not kind.startswith("gauge"):  # a gauge of an ended process means nothing
                into = MmapedDict(os.path.join(directory, f"{kind}_{archive}.db"))
                try:
                    for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                        total, _ = into.read_value(key)
                        into.write_value(key, total + value, timestamp)
                finally:
                    into.close()
            os.remove(path)
            folded += 1
    return folded


class ProcessCounters:
    """The counters of every process, live or archived (``MultiProcessCollector``'s merge,
    under the lock so that an archiving never shows a count twice or not at all)."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or _directory()

    def collect(self):
        with _files_locked(self.directory, fcntl.LOCK_SH):
            files = glob.glob(os.path.join(self.directory, "*.db"))
            return MultiProcessCollector.merge(files, accumulate=True)
