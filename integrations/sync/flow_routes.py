"""Which flow serves a path, answered from an in-process copy of the flows table.

The intake must answer with one database round trip (the INSERT), so it does not read
the flow per request. Each process keeps the flows by path for ``HUB_FLOW_CACHE_SECONDS``
(a few seconds). A flow saved or deleted in this process is forgotten at once (signals
connected in ``SyncConfig.ready``); another process sees the change when its copy
expires. A TTL rather than a version check: a check would itself be a query per request.
"""

import threading
import time

from django.conf import settings
from django.db import transaction

from integrations.sync.intake_auth import path_flow
from integrations.sync.intake_batches import in_orm_thread
from integrations.sync.intake_store import once_more_on_a_new_connection
from integrations.sync.models import Flow

_lock = threading.Lock()
# (expires at, by path, generation): replaced whole, never changed in place, so readers
# need no lock.
_routes: tuple[float, dict[str, Flow]] = (0.0, {})
_generation = 0


def flow_route(path: str) -> tuple[Flow, str] | None:
    """The flow serving ``path`` and the token the path carries ("" for none), or None.

    ``/zdrav/booked`` is the flow's own path; ``/zdrav/booked/<token>`` (one segment) is
    its token form, served to flows that have a token (``intake_auth.path_flow``).
    """
    return path_flow(path, _flows())


async def flow_route_async(path: str) -> tuple[Flow, str] | None:
    """``flow_route`` for an event loop: an expired copy is read again off the loop."""
    expires, flows = _routes
    if time.monotonic() >= expires:
        flows = await in_orm_thread(_flows)
    return path_flow(path, flows)


def flow_routes_forget(**kwargs) -> None:
    """Drops this process's copy of the flows (a signal receiver, also for tests)."""
    global _routes, _generation
    with _lock:
        _routes = (0.0, {})
        _generation += 1
    # A save inside a transaction: a reader may reload the old row before the commit.
    if kwargs.get("sender") is not None and transaction.get_connection().in_atomic_block:
        transaction.on_commit(flow_routes_forget)


def _flows() -> dict[str, Flow]:
    global _routes
    expires, flows = _routes
    if time.monotonic() < expires:
        return flows
    generation = _generation
    flows = once_more_on_a_new_connection(
        lambda: {flow.endpoint_path: flow for flow in Flow.objects.all()}
    )
    with _lock:
        # Not kept if the flows changed while they were being read.
        if generation == _generation:
            _routes = (time.monotonic() + settings.HUB_FLOW_CACHE_SECONDS, flows)
    return flows
