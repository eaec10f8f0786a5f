"""Retention: after a set age an event keeps its audit trail but not its personal data.

Delivered and skipped events are pruned ``HUB_RETENTION_DELIVERED_DAYS`` after they
arrived (or were last sent again), failed and rejected ones after
``HUB_RETENTION_FAILED_DAYS``; pending events never are. Pruning replaces the event's raw
body, payload, headers and last error, and its attempts' requests, answers and error
details (and the batch answers that carried it), by what ``Masker(removing=True)`` makes of
them: the same JSON with every personal value written ``***``. Ids, amounts, dates,
statuses, times, attempt counts, AmoCRM's status codes and error classes stay as they were.

It runs beside the workers: only finished events are touched, a few hundred per
transaction, taken with SKIP LOCKED so that neither side ever waits for the other.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.sync.masking import HIDDEN, Masker
from integrations.sync.models import BatchCall, DeliveryAttempt, EventStatus, InboundEvent

logger = logging.getLogger(__name__)

# Headers that say how the body was sent, not who sent it: kept as they came.
KEPT_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})
_PRUNED_FIELDS = ["raw_body", "payload", "headers", "last_error", "rdesk_id", "lead_id"]


@dataclass(frozen=True)
class RetentionRule:
    """Events in ``statuses`` keep their personal data ``days`` days: until ``cutoff``."""

    label: str
    statuses: tuple[str, ...]
    days: int
    cutoff: datetime

    def due(self) -> QuerySet[InboundEvent]:
        """The events of this rule that still hold their bodies and are old enough."""
        return InboundEvent.objects.filter(
            status__in=self.statuses, pruned_at__isnull=True, received_at__lt=self.cutoff
        ).exclude(replayed_at__gte=self.cutoff)

    def due_counts(self) -> dict[str, int]:
        """How many events are due, by status (every status of the rule, zeros too)."""
        counts = dict.fromkeys(self.statuses, 0)
        rows = self.due().order_by().values_list("status").annotate(count=Count("pk"))
        counts.update(dict(rows))
        return counts


def retention_rules(now: datetime | None = None) -> list[RetentionRule]:
    """The policy as the settings give it, with each rule's cut-off at ``now``."""
    now = now or timezone.now()
    delivered = settings.HUB_RETENTION_DELIVERED_DAYS
    failed = settings.HUB_RETENTION_FAILED_DAYS
    return [
        RetentionRule(
            label=_("Delivered and skipped"),
            statuses=(EventStatus.DELIVERED, EventStatus.SKIPPED),
            days=delivered,
            cutoff=now - timedelta(days=delivered),
        ),
        RetentionRule(
            label=_("Failed and rejected"),
            statuses=(EventStatus.FAILED, EventStatus.REJECTED),
            days=failed,
            cutoff=now - timedelta(days=failed),
        ),
    ]


def rule_for(status: str, now: datetime | None = None) -> RetentionRule | None:
    """The rule that covers events in ``status``; none for pending ones."""
    return next((rule for rule in retention_rules(now) if status in rule.statuses), None)


def pruned_count() -> int:
    return InboundEvent.objects.filter(pruned_at__isnull=False).count()


def events_prune(*, now: datetime | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Prunes every event the policy says is due; returns how many, by status."""
    now = now or timezone.now()
    batch_size = batch_size or settings.HUB_RETENTION_BATCH_SIZE
    pruned: dict[str, int] = {}
    for rule in retention_rules(now):
        # One status at a time: the index then hands out its due events oldest first.
        for status in rule.statuses:
            after = None
            while True:
                with transaction.atomic():
                    taken = _chunk_take(rule, status, after=after, limit=batch_size)
                    if not taken:
                        break
                    _chunk_prune([pk for pk, _received in taken], now=now)
                pruned[status] = pruned.get(status, 0) + len(taken)
                last_pk, last_received = taken[-1]
                after = (last_received, last_pk)
    if pruned:
        logger.info("events pruned", extra={"counts": pruned})
    return pruned


def _chunk_take(
    rule: RetentionRule, status: str, *, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[int, datetime]]:
    """Locks the next due events, oldest first, passing over any a worker or replay holds.

    ``after`` is the (received_at, id) of the last event taken. Passed-over events are
    pruned by the next run. The lock re-checks the conditions, so an event a replay made
    pending a moment ago is not taken.
    """
    due = rule.due().filter(status=status)
    if after is not None:
        received, pk = after
        due = due.filter(Q(received_at__gt=received) | Q(received_at=received, pk__gt=pk))
    return list(
        due.order_by("received_at", "pk")
        .select_for_update(skip_locked=True)
        .values_list("pk", "received_at")[:limit]
    )


def _chunk_prune(event_ids: list[int], *, now: datetime) -> None:
    # One UPDATE per row: Django's bulk_update builds a CASE per row and field in Python,
    # several times slower than the statements themselves for bodies this size.
    # Raw bodies (up to HUB_MAX_BODY_BYTES each) are read a few at a time and not kept;
    # only the items' maskers are, for the attempts.
    maskers: dict[int, Masker] = {}
    events = InboundEvent.objects.filter(pk__in=event_ids).only("pk", *_PRUNED_FIELDS)
    for event in events.iterator(chunk_size=20):
        masker = Masker(event.payload, removing=True)
        maskers[event.pk] = masker
        InboundEvent.objects.filter(pk=event.pk).update(
            raw_body=_raw_summary(bytes(event.raw_body), event.payload),
            payload=masker.json(event.payload, by_key=True),
            headers=_headers_summary(event.headers, masker),
            last_error=masker.text(event.last_error),
            # Ids stay; only a value RDESK sent in the wrong place (a name as lead_id) goes.
            rdesk_id=masker.text(event.rdesk_id),
            lead_id=masker.text(event.lead_id),
            pruned_at=now,
        )
    attempts = DeliveryAttempt.objects.filter(event_id__in=event_ids).only(
        "pk", "event_id", "batch_call_id", "request_body", "response_body", "error_detail"
    )
    batch_ids = set()
    for attempt in attempts.iterator(chunk_size=100):
        masker = maskers[attempt.event_id]
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            request_body=masker.json(attempt.request_body),
            response_body=masker.body(attempt.response_body),
            error_detail=masker.text(attempt.error_detail),
        )
        if attempt.batch_call_id:
            batch_ids.add(attempt.batch_call_id)
    _batch_calls_prune(batch_ids, maskers)


def _raw_summary(raw_body: bytes, payload) -> bytes:
    """The raw body's summary, or nothing when it is not JSON.

    The raw body holds every item posted with this one: its masker knows all their values.
    """
    try:
        posted = json.loads(raw_body.decode("utf-8"))
    except ValueError:
        return b""
    masker = Masker([payload, posted], removing=True)
    return json.dumps(masker.json(posted, by_key=True), ensure_ascii=False).encode("utf-8")


def _headers_summary(headers, masker: Masker) -> dict:
    if not isinstance(headers, dict):
        return {}
    return {
        name: masker.json(value) if name.lower() in KEPT_HEADERS else HIDDEN
        for name, value in headers.items()
    }


def _batch_calls_prune(batch_ids: set[int], maskers: dict[int, Masker]) -> None:
    """Masks the whole answers of the batch calls that carried these events.

    A batch call also carried events pruned later (or earlier): each prune masks it with
    the values of its own events, so it holds none once they are all pruned. The rows are
    locked in id order, so two prunes cannot undo each other's masking.
    """
    if not batch_ids:
        return
    carried = Masker([masker.source for masker in maskers.values()], removing=True)
    calls = list(BatchCall.objects.select_for_update().filter(pk__in=batch_ids).order_by("pk"))
    for call in calls:
        call.response_body = carried.body(call.response_body)
        call.error_detail = carried.text(call.error_detail)
    BatchCall.objects.bulk_update(calls, ["response_body", "error_detail"])
