"""Delivering events to AmoCRM, one account at a time: nudge, drain, sweep, resume, replay.

The database is the source of truth and a Celery message only a nudge that says "drain
this account". A drain takes whole leads in bulk (claims.py), coalesces and prepares
their events (batches.py), sends up to ``HUB_BATCH_SIZE`` updates per call (sending.py)
and records the outcome (outcomes.py), until nothing due is left. A lone event goes out
at once: nothing waits for a batch to fill. A lost nudge is made good by the sweeper.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient
from integrations.amocrm.ratelimit import limiter_get
from integrations.amocrm.tokens import AccountTokens
from integrations.sync.batches import Plan, batch_plan, older_follow_newest
from integrations.sync.claims import (
    PENDING,
    Claim,
    FencedLimiter,
    Heartbeat,
    account_events,
    claim_take,
    held_filter,
)
from integrations.sync.models import AccountDrain, EventStatus, InboundEvent
from integrations.sync.outcomes import (
    BLOCKED_MIN_DELAY,  # noqa: F401 (part of this module's interface)
    Outcome,
    claim_finish,
    outcome_of_error,
    retry_delay,  # noqa: F401 (part of this module's interface)
)
from integrations.sync.sending import Sent, items_send

logger = logging.getLogger(__name__)

# A retry further away than this is left to the sweeper rather than held by a worker as
# a delayed message (Redis would redeliver it, and a backlog would sit in worker memory).
MAX_COUNTDOWN = 300.0


def events_enqueue(
    event_ids: list[int], *, countdown: float | None = None, account_ids=None
) -> None:
    """Nudges the workers to drain these events' accounts; the sweeper makes good a loss.

    ``account_ids``: the accounts the events belong to (``None`` for flows with none),
    when the caller knows them, as the intake does. Then nothing is read or written here
    but the nudge: the events stay ``received`` until a worker claims them, which workers
    and the sweeper treat as they treat ``queued``. Without it the accounts are read and
    the nudged events marked ``queued``, as before.
    """
    if account_ids is not None:
        for account_id in set(account_ids):
            account_nudge(account_id=account_id, countdown=countdown)
        return
    accounts = set(
        InboundEvent.objects.filter(pk__in=event_ids).values_list("flow__account_id", flat=True)
    )
    nudged = [a for a in accounts if account_nudge(account_id=a, countdown=countdown) != FAILED]
    of_nudged = Q(flow__account_id__in=[a for a in nudged if a is not None])
    if None in nudged:
        of_nudged |= Q(flow__account__isnull=True)
    _mark_queued(InboundEvent.objects.filter(of_nudged, pk__in=event_ids))


def _mark_queued(events) -> None:
    """``received`` -> ``queued`` (a nudge is on its way), skipping rows a worker is
    claiming right now: it makes them ``queued`` itself, and waiting for its locks while
    holding ours could deadlock."""
    with transaction.atomic():
        ids = list(
            events.filter(status=EventStatus.RECEIVED)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)
        )
        InboundEvent.objects.filter(pk__in=ids).update(status=EventStatus.QUEUED)


# What became of a nudge.
SENT, ON_ITS_WAY, FAILED = "sent", "on its way", "failed"


def account_nudge(*, account_id: int | None, countdown: float | None = None) -> str:
    """Sends a drain message for the account: SENT, ON_ITS_WAY (one already is), FAILED.

    An immediate nudge is not sent while an earlier one still waits for a worker (at most
    ``HUB_NUDGE_TTL``): however many events arrive or are swept meanwhile, that one
    message drains them all.
    """
    from integrations.sync.tasks import drain_account

    if countdown is None and account_id is not None and not _nudge_mark_set(account_id):
        return ON_ITS_WAY
    try:
        drain_account.apply_async((account_id,), countdown=countdown)
    except Exception:
        logger.exception("enqueue failed; the sweeper will retry", extra={"account": account_id})
        if countdown is None and account_id is not None:
            AccountDrain.objects.filter(account_id=account_id).update(nudged_at=None)
        return FAILED
    return SENT


def nudge_mark_read(account_id: int | None) -> datetime | None:
    """When the account's drain was last nudged (None: never, or taken by a worker)."""
    return (
        AccountDrain.objects.filter(account_id=account_id)
        .values_list("nudged_at", flat=True)
        .first()
    )


def nudge_pending(nudged_at) -> bool:
    """Whether a nudge marked at ``nudged_at`` (None: never) still waits for a worker."""
    stale = timezone.now() - timedelta(seconds=settings.HUB_NUDGE_TTL)
    return nudged_at is not None and nudged_at >= stale


def _nudge_mark_set(account_id: int) -> bool:
    """Marks a nudge as on its way; False if one already is."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.HUB_NUDGE_TTL)
    # Under load a nudge is nearly always on its way already: one plain read says so,
    # without taking the row's lock. Only its absence goes on to the write that decides.
    if nudge_pending(nudge_mark_read(account_id)):
        return False
    marked = (
        AccountDrain.objects.filter(account_id=account_id)
        .filter(Q(nudged_at__isnull=True) | Q(nudged_at__lt=stale))
        .update(nudged_at=now)
    )
    if marked:
        return True
    _, created = AccountDrain.objects.get_or_create(
        account_id=account_id, defaults={"nudged_at": now}
    )
    return created


def account_drain(*, account_id: int | None, budget: float | None = None) -> dict[int, str]:
    """Delivers the account's due events, batch after batch; returns their statuses.

    Stops when nothing due is left, when AmoCRM refuses the account as a whole (an
    outage, a block, a refused token: retries are scheduled), or after ``budget``
    seconds, handing the rest to a fresh task so other accounts get their turn.
    """
    if account_id is not None:
        # From here on a new arrival needs a new nudge: this drain may already be past it.
        AccountDrain.objects.filter(account_id=account_id).update(nudged_at=None)
    budget = settings.HUB_DRAIN_BUDGET if budget is None else budget
    deadline = time.monotonic() + budget
    statuses: dict[int, str] = {}
    soonest = None
    while True:
        claim = claim_take(account_id=account_id, leads=settings.HUB_BATCH_SIZE)
        if claim is None:
            break
        if claim.full:
            # A backlog: one more drain (a free worker thread or process) shares it, each
            # on leads of its own, so calls overlap their waits up to the rate limit.
            account_nudge(account_id=account_id)
        finished, halted, retry_in = claim_deliver(claim)
        statuses.update(finished)
        if retry_in is not None:
            soonest = retry_in if soonest is None else min(soonest, retry_in)
        if halted:
            break
        if time.monotonic() > deadline:
            account_nudge(account_id=account_id, countdown=0)
            break
    if soonest is not None and soonest <= MAX_COUNTDOWN:
        account_nudge(account_id=account_id, countdown=soonest)
    _follow_up(account_id)
    return statuses


def _follow_up(account_id: int | None) -> None:
    """Comes back when another worker's lease runs out, in case that worker was killed."""
    now = timezone.now()
    expiry = (
        account_events(account_id)
        .filter(held_filter(now))
        .aggregate(soonest=Min("next_attempt_at"))["soonest"]
    )
    if expiry is not None:
        wait = (expiry - now).total_seconds() + 1.0
        account_nudge(account_id=account_id, countdown=min(wait, MAX_COUNTDOWN))


def claim_deliver(claim: Claim) -> tuple[dict[int, str], bool, float | None]:
    """Sends one claim's updates; returns (statuses, whether to stop, soonest retry)."""
    plan, sent = Plan(), Sent()
    outcomes: dict[int, Outcome] = {}
    batch_size = settings.HUB_BATCH_SIZE
    with Heartbeat(claim):
        try:
            client, guard = _client(claim)
            plan = batch_plan(claim=claim, client=client, batch_size=batch_size)
            outcomes.update(plan.outcomes)
            if plan.items:
                sent = items_send(
                    client=client, guard=guard, items=plan.items, batch_size=batch_size
                )
                outcomes.update(_sent_outcomes(sent))
        except Exception as error:  # an outage retries; a bug must not leave events stuck
            logger.exception(
                "delivery crashed",
                extra={"account": claim.account_id, "error_class": type(error).__name__},
            )
            for event in claim.events:
                outcomes.setdefault(event.pk, outcome_of_error(event, error))
        older_follow_newest(claim, plan, outcomes)
        statuses, soonest = claim_finish(
            claim=claim, outcomes=outcomes, logs=plan.logs + sent.logs, older=plan.older
        )
    halted = sent.halted or any(outcome.paused for outcome in outcomes.values())
    logger.info(
        "claim delivered",
        extra={
            "account": claim.account_id,
            "events": len(claim.events),
            "sent": len(plan.items),
            "delivered": len(sent.delivered),
        },
    )
    return statuses, halted, soonest


def _client(claim: Claim) -> tuple[AmoCRMClient | None, FencedLimiter | None]:
    account = claim.events[0].flow.account
    if account is None:
        return None, None
    guard = FencedLimiter(limiter_get(), claim)
    tokens = AccountTokens(account)
    return AmoCRMClient(account, tokens=tokens, limiter=guard, audit=False), guard


def _sent_outcomes(sent: Sent) -> dict[int, Outcome]:
    outcomes = {item.event.pk: Outcome(EventStatus.DELIVERED) for item in sent.delivered}
    for item, detail in sent.refused:
        outcomes[item.event.pk] = Outcome(
            EventStatus.FAILED, f"AmoCRM refused the update: {detail}"
        )
    for item, detail in sent.missing:
        outcomes[item.event.pk] = Outcome(
            EventStatus.FAILED, f"Lead {item.label} not found in AmoCRM: {detail}"
        )
    for item, error in sent.errors:
        outcomes[item.event.pk] = outcome_of_error(item.event, error, item.label)
    return outcomes


def event_deliver(*, event_id: int) -> str | None:
    """Drains the event's account now; the event's status if this drain settled it."""
    found = InboundEvent.objects.filter(pk=event_id).values_list("flow__account_id", flat=True)
    if not found:
        return None
    return account_drain(account_id=found[0]).get(event_id)


def events_sweep(*, grace: float | None = None, limit: int = 1000) -> int:
    """Nudges accounts with events overdue past the grace; returns how many events.

    Overdue: due longer ago than the grace and held by no one, or held under a lease
    that ran out (its worker died). An account whose last nudge still waits in the
    broker queue is left alone: its events are only waiting their turn. The sweeper
    writes no due time, so it can never overwrite a lease a worker has just taken.
    """
    grace = settings.HUB_SWEEP_GRACE if grace is None else grace
    now = timezone.now()
    overdue = InboundEvent.objects.filter(status__in=PENDING).filter(
        Q(claim_token__isnull=True, next_attempt_at__lte=now - timedelta(seconds=grace))
        | Q(claim_token__isnull=False, next_attempt_at__lte=now)
    )
    swept = 0
    by_account = overdue.values("flow__account_id").annotate(count=Count("pk"))
    for row in by_account.order_by("flow__account_id")[:limit]:
        account_id = row["flow__account_id"]
        if account_nudge(account_id=account_id) == SENT:
            swept += row["count"]
            _mark_queued(overdue.filter(flow__account_id=account_id))
    if swept:
        logger.info("swept stuck events", extra={"count": swept})
    return swept


def events_resume(*, account_id: int) -> int:
    """Sends the events that waited for the account to be reconnected; returns how many."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            account_events(account_id)
            .select_for_update(of=("self",))
            .filter(next_attempt_at__isnull=True, claim_token__isnull=True)
            .order_by("pk")  # as a finishing claim locks the unheld events it settles
            .values_list("pk", flat=True)
        )
        InboundEvent.objects.filter(pk__in=ids).update(next_attempt_at=now)
        if ids:
            transaction.on_commit(lambda: events_enqueue(ids), robust=True)
    if ids:
        logger.info("resumed paused events", extra={"account": account_id, "count": len(ids)})
    return len(ids)
