"""Recording how a claim ended: each event's outcome, its attempts, the batch calls.

Everything is written in one transaction and only to rows still carrying the claim's
token, so a worker that lost its claim records its calls (they happened) but changes no
event another worker now holds. The one exception is a lead's older events left out of
the claim (held by nobody), settled only while the claim still holds their lead.
"""

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Value
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from integrations.amocrm import client as amocrm
from integrations.amocrm.client import ApiCall
from integrations.amocrm.models import Account
from integrations.amocrm.ratelimit import SlotTimeout
from integrations.amocrm.tokens import account_disconnect
from integrations.monitoring import metrics
from integrations.sync.claims import PENDING, Claim, account_events
from integrations.sync.models import BatchCall, DeliveryAttempt, EventStatus, InboundEvent

logger = logging.getLogger(__name__)

# Outages of the hub's own infrastructure: retried with backoff like an AmoCRM outage,
# never a reason to fail an event (only data problems are).
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerError,
    SlotTimeout,
)
# 403 means AmoCRM blocked us for hammering: wait long before the next try.
BLOCKED_MIN_DELAY = 600.0


@dataclass
class Outcome:
    """How one event ended: a final status, or a retry after ``delay`` seconds."""

    status: str
    reason: str = ""
    delay: float | None = None
    # Waiting for an admin to reconnect the account: no due time, no attempt spent.
    paused: bool = False

    def due_at(self, now):
        """When the event is due again: ``delay`` from ``now``, or never (None)."""
        return now + timedelta(seconds=self.delay) if self.delay is not None else None


@dataclass
class CallLog:
    """A call made for a claim and, per event it carried, that event's part of it."""

    call: ApiCall
    # (event, the item sent for it, its part of the answer, error class, error detail)
    parts: list[tuple[InboundEvent, Any, str, str, str]] = field(default_factory=list)


def retry_delay(attempts: int, *, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, capped; AmoCRM's Retry-After when it is longer."""
    exponent = min(max(attempts - 1, 0), 30)  # past 2**30 the cap has long applied
    ceiling = min(settings.HUB_RETRY_MAX_DELAY, settings.HUB_RETRY_BASE_DELAY * 2**exponent)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def retry(event: InboundEvent, reason: str, *, retry_after: float | None = None) -> Outcome:
    """A retry after the event's next backoff step, or ``failed`` once it is too old."""
    # Backoff restarts at a replay: only the attempts since then count.
    delay = retry_delay(event.attempts - event.attempts_at_replay, retry_after=retry_after)
    age = (timezone.now() - (event.replayed_at or event.received_at)).total_seconds()
    if age + delay > settings.HUB_RETRY_MAX_AGE:
        return Outcome(EventStatus.FAILED, f"Gave up after {event.attempts} attempts: {reason}")
    return Outcome(EventStatus.QUEUED, reason, delay=delay)


def paused(account: Account) -> Outcome:
    reason = f"Paused: AmoCRM account '{account}' is disconnected"
    if account.state_reason:
        reason += f" ({account.state_reason})"
    return Outcome(EventStatus.QUEUED, reason + "; reconnect it to resume.", paused=True)


def outcome_of_error(event: InboundEvent, error: Exception, lead_label: str = "") -> Outcome:
    """What an error met while sending ``event`` makes of it."""
    if isinstance(error, TRANSIENT_ERRORS):
        return retry(event, f"Hub infrastructure unavailable: {type(error).__name__}: {error}")
    if not isinstance(error, amocrm.AmoCRMError):
        return Outcome(EventStatus.FAILED, f"Internal error: {type(error).__name__}: {error}")
    if isinstance(error, amocrm.Unauthorized):
        # AmoCRM no longer accepts the account's tokens and no refresh helped: only an admin
        # reconnecting it can, so its events wait instead of failing.
        account = event.flow.account
        account.refresh_from_db()
        if account.state != Account.State.DISCONNECTED:
            account_disconnect(account=account, reason=f"AmoCRM refused the token: {error.detail}")
        return paused(account)
    if isinstance(error, amocrm.NotFound):
        return Outcome(EventStatus.FAILED, f"Lead {lead_label} not found in AmoCRM: {error.detail}")
    if isinstance(error, amocrm.ValidationFailed):
        return Outcome(EventStatus.FAILED, f"AmoCRM refused the update: {error.detail}")
    if not error.retryable:
        return Outcome(EventStatus.FAILED, f"{type(error).__name__}: {error.detail}")
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, amocrm.Blocked):
        retry_after = max(retry_after or 0.0, BLOCKED_MIN_DELAY)
    return retry(event, f"{type(error).__name__}: {error.detail}", retry_after=retry_after)


_FIELDS = ["status", "last_error", "delivered_at", "next_attempt_at", "attempts", "claim_token"]


def claim_finish(
    *,
    claim: Claim,
    outcomes: dict[int, Outcome],
    logs: list[CallLog],
    older: dict[str, tuple[InboundEvent, Outcome]] | None = None,
) -> tuple[dict[int, str], float | None]:
    """Records the claim's calls and outcomes; returns (status by event, soonest retry).

    Events of the claim without an outcome are released as due now (their lead was
    taken but nothing was decided for them, e.g. a call for them was never made).
    ``older``: per lead id, a claimed event and the outcome of the lead's pending events
    older than it that the claim left out (``Plan.older``); they are settled too, and
    their statuses returned with the others.
    """
    now = timezone.now()
    events = {event.pk: event for event in claim.events}
    with transaction.atomic():
        _logs_save(claim, logs)
        resumed = _paused_but_connected(claim, outcomes)
        changed = []
        soonest = None
        for pk, event in events.items():
            outcome = outcomes.get(pk)
            if outcome is None or pk in resumed:
                reason = "" if pk in resumed else event.last_error
                outcome = Outcome(EventStatus.QUEUED, reason, delay=0)
                event.attempts = max(0, event.attempts - 1)
            event.status = outcome.status
            event.last_error = outcome.reason
            event.claim_token = None
            if outcome.status == EventStatus.DELIVERED:
                event.delivered_at = now
            event.next_attempt_at = outcome.due_at(now)
            if outcome.paused:
                event.attempts = max(0, event.attempts - 1)
            if outcome.delay is not None:
                soonest = outcome.delay if soonest is None else min(soonest, outcome.delay)
            event.updated_at = now
            changed.append(event)
        # Only rows still carrying our token: whatever another worker took stays its own.
        kept = InboundEvent.objects.filter(claim_token=claim.token, status__in=PENDING)
        delivered = [e.pk for e in changed if e.status == EventStatus.DELIVERED]
        written = kept.filter(pk__in=delivered).update(  # the common case, in one statement
            status=EventStatus.DELIVERED,
            last_error="",
            delivered_at=now,
            next_attempt_at=None,
            claim_token=None,
            updated_at=now,
        )
        rest = [e for e in changed if e.status != EventStatus.DELIVERED]
        written += _outcomes_write(kept, rest, now=now)
        # Every event of the claim still carried its token (each now locked until this
        # commits): it still holds its leads, and settles their older events. A claim
        # partly lost leaves them due, for whoever holds their leads now.
        held = written == len(changed)
        settled = _older_settle(claim, older or {}, resumed=resumed, now=now) if held else {}
    metrics.deliveries_observed(
        (e for e in changed if e.status == EventStatus.DELIVERED), delivered_at=now
    )
    if written != len(changed):
        logger.warning(
            "claim partly lost: rows taken over were left alone",
            extra={"account": claim.account_id, "lost": len(changed) - written},
        )
    return {**settled, **{pk: event.status for pk, event in events.items()}}, soonest


def _older_settle(
    claim: Claim, older: dict[str, tuple[InboundEvent, Outcome]], *, resumed: set[int], now
) -> dict[int, str]:
    """Settles each lead's pending events older than its measure that no worker holds
    (the claim holds their leads); returns their statuses. A lead whose paused events
    were resumed is left due."""
    rules = {lead: rule for lead, rule in older.items() if rule[0].pk not in resumed}
    if not rules:
        return {}
    # One plain condition for all the leads, each lead's own bound applied here: an OR
    # of a condition per lead costs the ORM more to build than the rest of the claim.
    latest = max(measure.received_at for measure, _ in rules.values())
    unheld = account_events(claim.account_id).filter(
        lead_id__in=list(rules), claim_token__isnull=True, received_at__lte=latest
    )
    found = defaultdict(list)
    # Locked in id order, as events_resume locks the unheld events it resumes.
    rows = unheld.select_for_update().order_by("pk").values_list("pk", "lead_id", "received_at")
    for pk, lead_id, received_at in rows:
        measure = rules[lead_id][0]
        if (received_at, pk) < (measure.received_at, measure.pk):
            found[lead_id].append(pk)
    settled = {}
    for lead_id, pks in found.items():
        outcome = rules[lead_id][1]
        InboundEvent.objects.filter(pk__in=pks).update(
            status=outcome.status,
            last_error=outcome.reason,
            next_attempt_at=outcome.due_at(now),
            updated_at=now,
        )
        settled.update(dict.fromkeys(pks, outcome.status))
    return settled


def _outcomes_write(kept, events: list[InboundEvent], *, now) -> int:
    """Writes the events' new state: one UPDATE per set of events with equal values,
    ``bulk_update`` for the rest; returns the rows written.

    A lead's superseded events share their outcome: a burst for one lead skips hundreds
    at a time, and ``bulk_update``'s CASE per row and field cost the worker more CPU than
    everything else in the claim.
    """
    alike = defaultdict(list)
    for event in events:
        alike[tuple(getattr(event, field) for field in _FIELDS)].append(event)
    written, single = 0, []
    for values, group in alike.items():
        if len(group) == 1:
            single += group
            continue
        written += kept.filter(pk__in=[event.pk for event in group]).update(
            **dict(zip(_FIELDS, values, strict=True)), updated_at=now
        )
    return written + kept.bulk_update(single, [*_FIELDS, "updated_at"], batch_size=500)


def _paused_but_connected(claim: Claim, outcomes: dict[int, Outcome]) -> set[int]:
    """Paused events whose account is connected again by now: they must not stay paused.

    The account row is locked, so a reconnection either committed before this (and is
    seen here) or waits until these events are committed paused (and resumes them).
    """
    waiting = [pk for pk, outcome in outcomes.items() if outcome.paused]
    if not waiting or claim.account_id is None:
        return set()
    state = (
        Account.objects.select_for_update()
        .filter(pk=claim.account_id)
        .values_list("state", flat=True)
        .first()
    )
    return set(waiting) if state == Account.State.CONNECTED else set()


def _logs_save(claim: Claim, logs: list[CallLog]) -> None:
    attempts = []
    for log in logs:
        batch = None
        if len(log.parts) > 1:
            batch = BatchCall.from_call(log.call, account_id=claim.account_id)
            batch.request_body = None  # each attempt below holds its own item
            batch.item_count = len(log.parts)
            batch.save()
        for event, sent, answer, error_class, error_detail in log.parts:
            attempt = DeliveryAttempt.from_call(log.call, event=event, batch_call=batch)
            if batch is not None:
                attempt.request_body = sent
                attempt.response_body = answer
                attempt.error_class = error_class or attempt.error_class
                attempt.error_detail = error_detail or attempt.error_detail
            # A value given as an expression makes PostgreSQL's bulk insert use VALUES
            # rather than UNNEST over arrays, whose text form psycopg builds in Python,
            # escaping every quote of the JSON bodies: half the cost of recording a batch.
            attempt.duration_ms = Value(attempt.duration_ms)
            attempts.append(attempt)
    DeliveryAttempt.objects.bulk_create(attempts, batch_size=500)
