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
Counters of processes that ended stay in their files, as a counter's total should; only
live gauges (none here) would need ``mark_process_dead``.

Each instrumented module makes one call here; labels are bounded (flow names, route
templates such as ``/api/v4/leads/{id}``, status codes, a few outcomes).
"""

import os
import re
import socket
from datetime import datetime
from urllib.parse import urlsplit

from prometheus_client import Counter, Histogram, values

# Before the first metric is made: every value class made from here on writes its files
# under a name no other container's process can have.
values.ValueClass = values.MultiProcessValue(
    process_identifier=lambda: f"{socket.gethostname()}-{os.getpid()}"
)


def process_identifier(pid: int | None = None) -> str:
    """The name this process's files carry (for ``mark_process_dead``)."""
    return f"{socket.gethostname()}-{os.getpid() if pid is None else pid}"


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
    INTAKE_REQUESTS.labels(flow=flow, status=str(status)).inc()


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


def process_files_release(pid: int | None = None) -> None:
    """Bookkeeping when a process ends (gunicorn's ``child_exit``, Celery's shutdown)."""
    from django.conf import settings
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(process_identifier(pid), settings.PROMETHEUS_MULTIPROC_DIR)
