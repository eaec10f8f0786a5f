"""Taking due work: whole leads of one account at a time, under a fenced, extended lease.

How per-lead order holds by construction
----------------------------------------
A worker never claims single events; it claims *leads* (an account and an RDESK lead
id, whichever flow brought the event). Claims of one account are taken one at a time (a
transaction-scoped advisory lock on PostgreSQL; SQLite's IMMEDIATE transactions are
serialised anyway), and a claim skips every lead that has an event under a live lease.
So at any moment at most one worker holds a given lead. It holds it by the lead's newest
pending event, the one it will send: the older pending events only wait for it, and end
with it (superseded, in one statement per lead) when the claim is finished. Only when the
newest gives no update (invalid, nothing mapped) does the holder take the older ones into
its claim too (``claim_widen``), and send the newest of them that does. An event arriving
while its lead is held waits for the holder to finish, so it is sent after, never
before, the older one. This is why claiming does not use ``SKIP LOCKED`` row by row: two
workers skipping each other's rows could split one lead's events between them, which is
the race it avoids.

Why not claim every pending event of a lead: under a burst for one lead (a booking edited
again and again) a claim would write, read and write again every event only to skip it.

Fencing and leases
------------------
A claim stamps its events with a fresh ``claim_token`` and pushes ``next_attempt_at``
one lease ahead. Every later write (heartbeat, finishing, retrying) is filtered on that
token, so a worker that lost its claim cannot overwrite whoever holds the events now. A
heartbeat thread extends the lease while the worker lives, and just before each call
to AmoCRM the lease is extended, under the token, to outlast the call (``claim_confirm``):
if that fails the call is not made. A killed worker stops beating, its lease runs out
(at most one lease, or one call's timeout, later) and the events are claimable again.
"""

import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from integrations.sync.models import EventStatus, Flow, InboundEvent

logger = logging.getLogger(__name__)

PENDING = (EventStatus.RECEIVED, EventStatus.QUEUED)
# A nudge may arrive a little before the time it was scheduled for.
CLOCK_TOLERANCE = timedelta(seconds=2)
# What a call may take beyond the client's own timeouts before the lease must be renewed.
CALL_MARGIN = 5.0


class ClaimLost(Exception):
    """The claim's token no longer matches: another worker holds (some of) its events."""


@dataclass
class Claim:
    """Events of whole leads taken by one worker, fenced by ``token``."""

    token: uuid.UUID
    account_id: int | None
    events: list[InboundEvent] = field(default_factory=list)
    full: bool = False  # as many leads as were asked for: more may be due
    # Leads whose older pending events were taken into the claim (``claim_widen``).
    widened: set[str] = field(default_factory=set)


def account_events(account_id: int | None):
    """The pending events of an account (``None``: of flows with no account)."""
    if account_id is None:
        flows = Flow.objects.filter(account__isnull=True)
    else:
        flows = Flow.objects.filter(account_id=account_id)
    return InboundEvent.objects.filter(flow__in=flows, status__in=PENDING)


def due_filter(now) -> Q:
    """Due: an unheld event whose time has come, or a held one whose lease ran out.

    Written as one range of ``next_attempt_at`` narrowed further, not as an OR of two
    ranges: the database reads one range of its index instead of two.
    """
    return Q(next_attempt_at__lte=now + CLOCK_TOLERANCE) & (
        Q(claim_token__isnull=True) | Q(next_attempt_at__lte=now)
    )


def held_filter(now) -> Q:
    return Q(claim_token__isnull=False, next_attempt_at__gt=now)


def claim_take(*, account_id: int | None, leads: int) -> Claim | None:
    """Claims up to ``leads`` leads with due events, each by its newest pending event."""
    now = timezone.now()
    token = uuid.uuid4()
    pending = account_events(account_id)
    with transaction.atomic():
        _claims_serialise(account_id)
        due = pending.filter(due_filter(now))
        # The leads other workers hold, read first: a NOT IN over them costs far less
        # than probing each due lead for a held event. Only a claim (serialised above)
        # takes a lead, so a lead released meanwhile is merely left for the next claim;
        # a holder whose lease ran out may extend it meanwhile, as it may before the
        # UPDATE below, and the new token fences it off either way.
        held = set(
            pending.filter(held_filter(now))
            .exclude(lead_id="")
            .order_by()  # a set: the events' default order would only cost a sort
            .values_list("lead_id", flat=True)
        )
        lead_ids = list(
            due.exclude(lead_id="")
            .exclude(lead_id__in=held)
            .values("lead_id")
            .annotate(first=Min("received_at"))
            .order_by("first")
            .values_list("lead_id", flat=True)[:leads]
        )
        # Events without a lead id cannot be sent; each is a "lead" of its own.
        loose = list(
            due.filter(lead_id="")
            .order_by("received_at")
            .values_list("pk", flat=True)[: max(0, leads - len(lead_ids))]
        )
        if not lead_ids and not loose:
            return None
        newest = _newest_pending(pending, lead_ids)
        # A taken lead's events that still carry a token are a holder's whose lease ran
        # out (live ones were excluded above): taken too, so that holder, if it still
        # runs, is fenced off from every one of them, not only from the newest.
        stale = Q(lead_id__in=lead_ids, claim_token__isnull=False)
        taken = Q(pk__in=newest) | stale | Q(pk__in=loose, lead_id="")
        _stamp(pending.filter(taken), token, now)
    events = _claimed(token)
    if not events:
        return None
    full = len(lead_ids) + len(loose) >= leads
    return Claim(token=token, account_id=account_id, events=events, full=full)


def claim_widen(claim: Claim, lead_ids: set[str]) -> list[InboundEvent]:
    """Takes the other pending events of these leads, which the claim holds, into it;
    returns them (none if the claim was lost meanwhile).

    For a lead whose newest event gives no update: an older one may, and is then sent.
    """
    lead_ids = set(lead_ids) - claim.widened
    if not lead_ids:
        return []
    held = {event.pk: event.lead_id for event in claim.events if event.lead_id in lead_ids}
    with transaction.atomic():
        _claims_serialise(claim.account_id)  # no claim of the account runs meanwhile
        now = timezone.now()
        # Under that lock the token decides, as it does for sending and finishing: a
        # lead whose event no longer carries it was taken over and is left alone.
        ours = InboundEvent.objects.filter(pk__in=held, claim_token=claim.token)
        kept = set(ours.values_list("pk", flat=True))
        lead_ids -= {lead_id for pk, lead_id in held.items() if pk not in kept}
        if not lead_ids:
            return []
        ours.update(next_attempt_at=_lease_end(now))
        others = account_events(claim.account_id).filter(
            lead_id__in=lead_ids, claim_token__isnull=True
        )
        _stamp(others, claim.token, now)
    added = _claimed(claim.token, exclude={event.pk for event in claim.events})
    claim.widened |= lead_ids
    claim.events = sorted([*claim.events, *added], key=lambda e: (e.received_at, e.pk))
    return added


def _newest_pending(pending, lead_ids: list[str]) -> list[int]:
    """Each lead's newest pending event (by arrival: received time, then id)."""
    of_leads = pending.filter(lead_id__in=lead_ids)
    if connection.vendor == "postgresql":
        newest = of_leads.order_by("lead_id", "-received_at", "-pk").distinct("lead_id")
        return list(newest.values_list("pk", flat=True))
    found: dict[str, tuple] = {}
    for lead_id, received_at, pk in of_leads.order_by().values_list("lead_id", "received_at", "pk"):
        found[lead_id] = max(found.get(lead_id, (received_at, pk)), (received_at, pk))
    return [pk for _, pk in found.values()]


def _stamp(events, token: uuid.UUID, now) -> None:
    """Puts the events under the claim's token for one lease."""
    events.update(
        claim_token=token,
        status=EventStatus.QUEUED,
        attempts=F("attempts") + 1,
        next_attempt_at=_lease_end(now),
        updated_at=now,
    )


def _lease_end(now):
    """When a lease taken or renewed ``now`` runs out."""
    return now + timedelta(seconds=settings.HUB_DELIVERY_LEASE)


def _claimed(token: uuid.UUID, *, exclude=()) -> list[InboundEvent]:
    """The events under ``token`` (but ``exclude``), oldest first, each with its flow."""
    events = list(
        InboundEvent.objects.filter(claim_token=token)
        .exclude(pk__in=exclude)
        # Delivery reads the parsed payload and the delivery state: the raw body and
        # headers (kept for the audit trail, compressed by PostgreSQL) and the columns
        # that only describe the request would be read and converted for nothing.
        .defer(*_UNREAD_BY_DELIVERY)
        .order_by("received_at", "pk")
    )
    # The claim's few flows, each with its account, read once and shared by their events:
    # joined to every event row, each would bring its own account, and each account's
    # secrets would be decrypted again, once per event.
    flows = Flow.objects.select_related("account").in_bulk({event.flow_id for event in events})
    for event in events:
        event.flow = flows[event.flow_id]
    return events


# An event's columns that delivery neither reads nor needs (``updated_at`` it only sets).
_UNREAD_BY_DELIVERY = (
    "raw_body",
    "headers",
    "remote_addr",
    "body_hash",
    "rdesk_id",
    "item_index",
    "pruned_at",
    "updated_at",
)


def _claims_serialise(account_id: int | None) -> None:
    """Makes claims of one account take turns until the current transaction ends."""
    if connection.vendor != "postgresql":
        return  # SQLite: a write transaction (IMMEDIATE) already excludes every other
    digest = hashlib.blake2b(f"claim:{account_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )


def claim_extend(claim: Claim, *, seconds: float | None = None) -> int:
    """Pushes the lease of the claim's unfinished events ahead; returns how many."""
    seconds = settings.HUB_DELIVERY_LEASE if seconds is None else seconds
    now = timezone.now()
    return InboundEvent.objects.filter(claim_token=claim.token, status__in=PENDING).update(
        next_attempt_at=now + timedelta(seconds=seconds)
    )


def claim_confirm(claim: Claim, event_ids: list[int]) -> None:
    """Extends the lease over these events to outlast one call; ``ClaimLost`` if not ours.

    Called right before a request leaves (before its rate-limit slot, which the heartbeat
    covers), so the request is only made while no other worker can hold its leads.
    """
    connect, read = settings.AMOCRM_TIMEOUT
    seconds = max(settings.HUB_DELIVERY_LEASE, connect + read + CALL_MARGIN)
    now = timezone.now()
    ours = InboundEvent.objects.filter(
        pk__in=event_ids, claim_token=claim.token, status__in=PENDING
    ).update(next_attempt_at=now + timedelta(seconds=seconds))
    if ours != len(set(event_ids)):
        raise ClaimLost(f"{len(set(event_ids)) - ours} of {len(event_ids)} events taken over")


class FencedLimiter:
    """The fence, then the integration's turn: a call is made only with a live claim.

    The fence comes first so that nothing (a database round trip) stands between taking
    the turn and sending. ``carrying`` names the events the next request carries (set by
    the sender).
    """

    def __init__(self, limiter, claim: Claim):
        self.limiter = limiter
        self.claim = claim
        self.carrying: list[int] = []

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        if self.carrying:
            claim_confirm(self.claim, self.carrying)
        if self.limiter is None:
            yield
            return
        with self.limiter.slot(key):
            yield


class Heartbeat:
    """Extends the claim's lease every third of it, in a thread, while the block runs."""

    def __init__(self, claim: Claim, *, interval: float | None = None):
        self.claim = claim
        self.interval = settings.HUB_DELIVERY_LEASE / 3 if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from django.db import connection as thread_connection  # this thread's own

        try:
            while not self._stop.wait(self.interval):
                try:
                    claim_extend(self.claim)
                except Exception:  # a missed beat is made good by the next one
                    logger.warning("lease heartbeat failed", exc_info=True)
        finally:
            thread_connection.close()
