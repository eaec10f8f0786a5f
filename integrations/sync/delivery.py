"""Delivering an event to AmoCRM: claim it, validate, transform, PATCH the lead, record.

The database is the source of truth and a Celery message only a nudge. A worker claims
an event by pushing its ``next_attempt_at`` one lease ahead (under a row lock), so a
duplicate message finds nothing to do and a crashed worker's event is swept after the
lease. Every call to AmoCRM leaves a ``DeliveryAttempt`` row.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.amocrm import client as amocrm
from integrations.amocrm.client import AmoCRMClient, ApiCall
from integrations.amocrm.models import Account
from integrations.amocrm.ratelimit import SlotTimeout, limiter_get
from integrations.amocrm.tokens import AccountTokens, account_disconnect
from integrations.sync.leads import (
    LeadTargetError,
    lead_target,
    mock_lead_name,
    newer_event_find,
)
from integrations.sync.models import DeliveryAttempt, EventStatus, InboundEvent
from integrations.sync.updates import UpdateProblem, lead_update_prepare

logger = logging.getLogger(__name__)

PENDING = (EventStatus.RECEIVED, EventStatus.QUEUED)
# A retry further away than this is left to the sweeper rather than held by a worker as
# a delayed message (Redis would redeliver it, and a backlog would sit in worker memory).
MAX_COUNTDOWN = 300.0
# 403 means AmoCRM blocked us for hammering: wait long before the next try.
BLOCKED_MIN_DELAY = 600.0
# A message may arrive a little before the time it was scheduled for.
CLOCK_TOLERANCE = timedelta(seconds=2)


@dataclass
class Outcome:
    """How one delivery ended: a final status, or a retry after ``delay`` seconds."""

    status: str
    reason: str = ""
    delay: float | None = None
    # Waiting for an admin to reconnect the account: no due time, no attempt spent.
    paused: bool = False


def events_enqueue(event_ids: list[int], *, countdown: float | None = None) -> None:
    """Nudges the workers; a message that never arrives is made good by the sweeper."""
    from integrations.sync.tasks import deliver_event

    for event_id in event_ids:
        try:
            deliver_event.apply_async((event_id,), countdown=countdown)
        except Exception:
            logger.exception("enqueue failed; the sweeper will retry", extra={"event": event_id})
            continue
        InboundEvent.objects.filter(pk=event_id, status=EventStatus.RECEIVED).update(
            status=EventStatus.QUEUED
        )


def retry_delay(attempts: int, *, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, capped; AmoCRM's Retry-After when it is longer."""
    exponent = min(max(attempts - 1, 0), 30)  # past 2**30 the cap has long applied
    ceiling = min(settings.HUB_RETRY_MAX_DELAY, settings.HUB_RETRY_BASE_DELAY * 2**exponent)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def event_claim(*, event_id: int) -> InboundEvent | None:
    """Takes a due event for this worker, or None when it is not due or not pending."""
    now = timezone.now()
    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("flow__account")
            .filter(pk=event_id, status__in=PENDING)
            .first()
        )
        if event is None:
            return None
        if event.next_attempt_at and event.next_attempt_at > now + CLOCK_TOLERANCE:
            return None
        event.status = EventStatus.QUEUED
        event.attempts += 1
        event.next_attempt_at = now + timedelta(seconds=settings.HUB_DELIVERY_LEASE)
        event.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    return event


def event_deliver(*, event_id: int) -> str | None:
    """Delivers one event if it is due; returns the status it ended in (None: not claimed)."""
    event = event_claim(event_id=event_id)
    if event is None:
        return None
    client = None
    try:
        outcome, client = _attempt(event)
    except Exception as error:  # a bug must not leave the event silently stuck
        logger.exception("delivery crashed", extra={"event": event.pk})
        outcome = Outcome(EventStatus.FAILED, f"Internal error: {type(error).__name__}: {error}")
    event_finish(event=event, outcome=outcome, calls=client.calls if client else [])
    return event.status


def _attempt(event: InboundEvent) -> tuple[Outcome, AmoCRMClient | None]:
    flow = event.flow
    account = flow.account
    if not flow.enabled:
        return Outcome(EventStatus.SKIPPED, f"Flow '{flow}' is disabled."), None
    if account is None:
        return Outcome(EventStatus.FAILED, f"Flow '{flow}' has no AmoCRM account."), None
    if account.state == Account.State.DISCONNECTED:
        return _paused(account), None
    try:
        prepared = lead_update_prepare(flow=flow, payload=event.payload)
    except UpdateProblem as problem:
        return Outcome(problem.status, problem.reason), None
    update = prepared.update

    client = AmoCRMClient(
        account, tokens=AccountTokens(account), limiter=limiter_get(), audit=False
    )
    rdesk_lead_id = prepared.rdesk_lead_id
    lead_label = str(rdesk_lead_id)
    try:
        lead_id = lead_target(flow=flow, rdesk_lead_id=rdesk_lead_id, client=client)
        if flow.mock_lead_id:
            lead_label = f"{lead_id} ({mock_lead_name(rdesk_lead_id)})"
        # As late as possible, so a newer event delivered meanwhile is seen.
        newer = newer_event_find(event=event)
        if newer is not None:
            return _superseded(newer), client
        client.lead_update(lead_id, update)
    except LeadTargetError as error:
        return Outcome(EventStatus.FAILED, f"Cannot find or create the lead: {error}"), client
    except amocrm.AmoCRMError as error:
        return _outcome_of_error(event, error, lead_label), client
    except SlotTimeout as error:
        return Outcome(EventStatus.QUEUED, str(error), delay=retry_delay(1)), client
    return Outcome(EventStatus.DELIVERED), client


def _superseded(newer: InboundEvent) -> Outcome:
    received = timezone.localtime(newer.received_at).isoformat(timespec="seconds")
    return Outcome(
        EventStatus.SKIPPED,
        f"Older than event #{newer.pk} (received {received}), already delivered to this "
        "lead: sending this one would overwrite newer data.",
    )


def _paused(account: Account) -> Outcome:
    reason = f"Paused: AmoCRM account '{account}' is disconnected"
    if account.state_reason:
        reason += f" ({account.state_reason})"
    return Outcome(EventStatus.QUEUED, reason + "; reconnect it to resume.", paused=True)


def _outcome_of_error(
    event: InboundEvent, error: amocrm.AmoCRMError, lead_id: int | str
) -> Outcome:
    if isinstance(error, amocrm.Unauthorized):
        # AmoCRM no longer accepts the account's tokens and no refresh helped: only an admin
        # reconnecting it can, so its events wait instead of failing.
        account = event.flow.account
        account.refresh_from_db()
        if account.state != Account.State.DISCONNECTED:
            account_disconnect(account=account, reason=f"AmoCRM refused the token: {error.detail}")
        return _paused(account)
    if isinstance(error, amocrm.NotFound):
        return Outcome(EventStatus.FAILED, f"Lead {lead_id} not found in AmoCRM: {error.detail}")
    if isinstance(error, amocrm.ValidationFailed):
        return Outcome(EventStatus.FAILED, f"AmoCRM refused the update: {error.detail}")
    if not error.retryable:
        return Outcome(EventStatus.FAILED, f"{type(error).__name__}: {error.detail}")
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, amocrm.Blocked):
        retry_after = max(retry_after or 0.0, BLOCKED_MIN_DELAY)
    # Counted since the last replay, so a replayed event does not start at the cap.
    delay = retry_delay(event.attempts - event.attempts_at_replay, retry_after=retry_after)
    reason = f"{type(error).__name__}: {error.detail}"
    age = (timezone.now() - (event.replayed_at or event.received_at)).total_seconds()
    if age + delay > settings.HUB_RETRY_MAX_AGE:
        return Outcome(EventStatus.FAILED, f"Gave up after {event.attempts} attempts: {reason}")
    return Outcome(EventStatus.QUEUED, reason, delay=delay)


def event_finish(*, event: InboundEvent, outcome: Outcome, calls: list[ApiCall]) -> None:
    """Records the attempts and the outcome; schedules the retry after commit."""
    now = timezone.now()
    event.status = outcome.status
    event.last_error = outcome.reason
    if outcome.status == EventStatus.DELIVERED:
        event.delivered_at = now
    event.next_attempt_at = (
        now + timedelta(seconds=outcome.delay) if outcome.delay is not None else None
    )
    if outcome.paused:
        event.attempts = max(0, event.attempts - 1)
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt.from_call(call, event=event) for call in calls
        )
        event.save(
            update_fields=[
                "status",
                "last_error",
                "delivered_at",
                "next_attempt_at",
                "attempts",
                "updated_at",
            ]
        )
        if outcome.delay is not None and outcome.delay <= MAX_COUNTDOWN:
            transaction.on_commit(
                lambda: events_enqueue([event.pk], countdown=outcome.delay), robust=True
            )
    logger.info(
        "delivery finished",
        extra={
            "event": event.pk,
            "status": event.status,
            "attempts": event.attempts,
            "reason": outcome.reason,
        },
    )


def events_sweep(*, grace: float | None = None, limit: int = 1000) -> int:
    """Re-enqueues pending events whose message was lost; returns how many."""
    grace = settings.HUB_SWEEP_GRACE if grace is None else grace
    now = timezone.now()
    ids = list(
        InboundEvent.objects.filter(
            status__in=PENDING, next_attempt_at__lte=now - timedelta(seconds=grace)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    # Pushing the due time to now keeps the next sweep from sending them again at once.
    InboundEvent.objects.filter(pk__in=ids, status__in=PENDING).update(next_attempt_at=now)
    events_enqueue(ids)
    logger.info("swept stuck events", extra={"count": len(ids)})
    return len(ids)


def events_resume(*, account_id: int) -> int:
    """Sends the events that waited for the account to be reconnected; returns how many."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            InboundEvent.objects.select_for_update(of=("self",))
            .filter(flow__account_id=account_id, status__in=PENDING, next_attempt_at__isnull=True)
            .values_list("pk", flat=True)
        )
        InboundEvent.objects.filter(pk__in=ids).update(next_attempt_at=now)
        transaction.on_commit(lambda: events_enqueue(ids), robust=True)
    if ids:
        logger.info("resumed paused events", extra={"account": account_id, "count": len(ids)})
    return len(ids)
