"""Sending finished events to AmoCRM again, and choosing which ones.

A replay never rewrites history: the attempt counter and earlier delivery attempts stay
as they were, the next delivery appends its own attempts, and a ``Replay`` row says who
asked for it, when, how, and what the event looked like before.
"""

import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from functools import partial

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from integrations.sync.delivery import events_enqueue
from integrations.sync.models import EventStatus, Flow, InboundEvent, Replay

logger = logging.getLogger(__name__)

# Finished events only: a pending one may be in a worker's hands right now (a second send
# would race it), and a rejected one has nothing to send.
REPLAYABLE = (EventStatus.FAILED, EventStatus.SKIPPED, EventStatus.DELIVERED)
PENDING = (EventStatus.RECEIVED, EventStatus.QUEUED)
# Keeps each statement's parameter list short (SQLite in the embedded mode) and each
# Celery burst small.
CHUNK_SIZE = 500


class FilterError(ValueError):
    """A filter that cannot select anything: an unknown flow or status, an empty range."""


def events_replay(*, event_ids: Iterable[int], user=None, source: str) -> int:
    """Queues the finished events among ``event_ids`` for delivery again; returns how many.

    ``source`` is a ``Replay.Source`` value. Pending and rejected events are left alone.
    Workers are nudged only after the transaction commits, so they find the events queued.
    """
    ids = sorted(set(event_ids))
    now = timezone.now()
    replayed = 0
    with transaction.atomic():
        for chunk in _chunks(ids):
            replayed += _chunk_replay(chunk, user=user, source=source, now=now)
    if replayed:
        logger.info(
            "events replayed",
            extra={"count": replayed, "source": source, "user": getattr(user, "pk", None)},
        )
    return replayed


def _chunk_replay(event_ids: list[int], *, user, source: str, now: datetime) -> int:
    # Locked in id order, so two replays of overlapping sets cannot deadlock.
    events = list(
        InboundEvent.objects.select_for_update()
        # A pruned event's payload no longer holds what was sent: it cannot be sent again.
        .filter(pk__in=event_ids, status__in=REPLAYABLE, pruned_at__isnull=True)
        .order_by("pk")
        .values_list("pk", "status", "attempts")
    )
    if not events:
        return 0
    Replay.objects.bulk_create(
        Replay(
            event_id=pk,
            requested_at=now,
            requested_by=user,
            source=source,
            previous_status=status,
            attempts_before=attempts,
        )
        for pk, status, attempts in events
    )
    ids = [pk for pk, _, _ in events]
    InboundEvent.objects.filter(pk__in=ids).update(
        status=EventStatus.QUEUED,
        next_attempt_at=now,
        replayed_at=now,
        attempts_at_replay=F("attempts"),
        last_error="",
        updated_at=now,
    )
    transaction.on_commit(partial(events_enqueue, ids), robust=True)
    return len(ids)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK_SIZE):
        yield ids[start : start + CHUNK_SIZE]


def events_matching(
    *,
    status: str | Iterable[str] | None = None,
    flow: Flow | int | str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    lead_id: str | int | None = None,
    rdesk_id: str | int | None = None,
) -> QuerySet[InboundEvent]:
    """The events a replay filter selects, oldest first.

    ``status``: one status or several. ``flow``: a Flow, its id, name or endpoint path.
    ``since``/``until``: bounds on when the event arrived, both inclusive; a date means the
    whole day in the hub's time zone. Raises ``FilterError`` for a filter that makes no
    sense (unknown flow or status, ``since`` after ``until``).
    """
    events = InboundEvent.objects.order_by("received_at", "pk")
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        unknown = sorted(set(statuses) - set(EventStatus.values))
        if unknown:
            raise FilterError(
                gettext("Unknown status: %(statuses)s; choose from: %(choices)s.")
                % {"statuses": ", ".join(unknown), "choices": ", ".join(EventStatus.values)}
            )
        events = events.filter(status__in=statuses)
    if flow is not None:
        events = events.filter(flow=flow_find(flow))
    start = _moment(since, end=False)
    end = _moment(until, end=True)
    if start is not None and end is not None:
        # A date's end is the next midnight, excluded; a moment is included.
        empty = start >= end if _is_date(until) else start > end
        if empty:
            raise FilterError(gettext("The start of the range is after its end."))
    if start is not None:
        events = events.filter(received_at__gte=start)
    if end is not None:
        lookup = "received_at__lt" if _is_date(until) else "received_at__lte"
        events = events.filter(**{lookup: end})
    if lead_id not in (None, ""):
        events = events.filter(lead_id=str(lead_id))
    if rdesk_id not in (None, ""):
        events = events.filter(rdesk_id=str(rdesk_id))
    return events


def flow_find(flow: Flow | int | str) -> Flow:
    """A flow by itself, its id, its name or its endpoint path; ``FilterError`` if none."""
    if isinstance(flow, Flow):
        return flow
    text = str(flow).strip()
    match = Q(name=text) | Q(endpoint_path=text)
    if text.isdigit():
        match |= Q(pk=int(text))
    found = list(Flow.objects.filter(match)[:2])
    if len(found) == 1:
        return found[0]
    if not found:
        raise FilterError(
            gettext("No flow with the id, name or endpoint path '%(flow)s'.") % {"flow": text}
        )
    # A name that is another flow's id: the id wins, being what lists show first.
    by_id = [candidate for candidate in found if str(candidate.pk) == text]
    if by_id:
        return by_id[0]
    raise FilterError(gettext("'%(flow)s' names more than one flow.") % {"flow": text})


def _is_date(value) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _moment(value: datetime | date | None, *, end: bool) -> datetime | None:
    if value is None:
        return None
    if _is_date(value):
        day = value + timedelta(days=1) if end else value
        return timezone.make_aware(datetime.combine(day, time.min))
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value
