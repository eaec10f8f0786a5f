"""The ASGI intake's nudges, coalesced: at most one per account per interval and process.

Each drain that starts clears its account's nudge mark, so a new arrival nudges again.
When every event is for one lead, only one drain can work at a time; the others find
nothing to claim and end at once, clearing the mark, and the next request nudges: at
RDESK's burst rate nearly every request published a message and ran the mark's queries.
Here the requests of one process only note which accounts want a nudge; one task sends
them, at once after a quiet spell and then at most every ``HUB_INTAKE_NUDGE_INTERVAL``.
The request does not wait for it: its events are committed already, and a nudge that
is lost (a broker down, a process stopped) is made good by the sweeper, as before.
"""

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections

from integrations.sync.delivery import events_enqueue

logger = logging.getLogger(__name__)

_wanted: set[int | None] = set()
_sender: asyncio.Task | None = None
# A thread of the nudges' own: a broker that hangs (each publish may take its retries'
# timeouts) holds up the nudges, never the intake's own work off the loop.
_nudge_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-nudge")


def nudge_want(account_id: int | None) -> None:
    """Notes that ``account_id`` (None: flows without one) has new events to drain."""
    global _sender
    _wanted.add(account_id)
    loop = asyncio.get_running_loop()
    if _sender is None or _sender.done() or _sender.get_loop() is not loop:
        _sender = loop.create_task(_send())


async def _send() -> None:
    while _wanted:
        accounts = list(_wanted)
        _wanted.clear()
        try:
            await asyncio.get_running_loop().run_in_executor(
                _nudge_thread, functools.partial(events_enqueue, [], account_ids=accounts)
            )
        except Exception:
            logger.exception("intake nudge failed; the sweeper will send the events")
        await asyncio.sleep(settings.HUB_INTAKE_NUDGE_INTERVAL)


async def nudges_sent() -> None:
    """Waits until the nudges this process's requests asked for are sent, then closes the
    nudges' database connection (at shutdown)."""
    loop = asyncio.get_running_loop()
    sender = _sender
    if sender is not None and sender.get_loop() is loop:
        await sender
    await loop.run_in_executor(_nudge_thread, connections.close_all)
