"""Judging rejected bodies again, after an upgrade, a schema change or a raised item limit.

The intake refused them whole, each as one ``rejected`` event with its raw body. This runs
the intake's parsing and validation over the stored body once more; a body that passes
now becomes one ``received`` event per item, due at once, exactly as if it had just been
accepted, and the rejected event stays as the audit record, its last error saying which
events it became. Only refusals that rested on the schema or the item limit are judged
again (``intake.REJUDGEABLE_REASONS``): a body refused for its credentials or for not
being JSON stays rejected, whatever it holds.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from integrations.sync.intake import (
    REJUDGEABLE_REASONS,
    IntakeRefused,
    IntakeRequest,
    items_accept,
    items_store,
)
from integrations.sync.models import EventStatus, InboundEvent

logger = logging.getLogger(__name__)

# Written under the reason of a re-validated event; its presence makes a re-run skip it.
REVALIDATED_NOTE = "Re-validated into events"


@dataclass
class Revalidation:
    """What a re-validation found: rejected event id -> the new events' ids, and the rest."""

    accepted: dict[int, list[int]] = field(default_factory=dict)
    still_invalid: list[int] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(len(ids) for ids in self.accepted.values())


def rejudgeable_events(events: QuerySet[InboundEvent] | None = None) -> QuerySet[InboundEvent]:
    """The rejected events among ``events`` (default: all) that a re-validation judges."""
    events = InboundEvent.objects.all() if events is None else events
    reasons = Q()
    for pattern in REJUDGEABLE_REASONS:
        reasons |= Q(last_error__regex=pattern)
    return (
        # A pruned body holds *** where the guest's data was: never a delivery again.
        events.filter(reasons, status=EventStatus.REJECTED, pruned_at__isnull=True)
        .exclude(last_error__contains=REVALIDATED_NOTE)
        .order_by("received_at", "pk")
    )


def events_revalidate(*, events: QuerySet[InboundEvent], dry_run: bool = False) -> Revalidation:
    """Re-validates the judgeable rejected events among ``events``; see the module text.

    Idempotent: an event already re-validated is skipped, and each one is locked while
    judged, so two runs at once cannot both turn it into deliveries. With ``dry_run``
    nothing is written; the result says what would have happened.
    """
    outcome = Revalidation()
    now = timezone.now()
    for event_id in list(rejudgeable_events(events).values_list("pk", flat=True)):
        with transaction.atomic():
            event = (
                rejudgeable_events()
                .select_for_update(of=("self",))
                .select_related("flow")
                .filter(pk=event_id)
                .first()
            )
            if event is None:  # re-validated meanwhile by someone else
                continue
            try:
                items = items_accept(kind=event.flow.kind, request=_stored_request(event))
            except IntakeRefused:
                outcome.still_invalid.append(event.pk)
                continue
            if dry_run:
                outcome.accepted[event.pk] = []
                continue
            outcome.accepted[event.pk] = _event_revalidate(event, items, now=now)
    if outcome.accepted and not dry_run:
        logger.info(
            "events revalidated",
            extra={"rejected": sorted(outcome.accepted), "events": outcome.items},
        )
    return outcome


def _stored_request(event: InboundEvent) -> IntakeRequest:
    body = bytes(event.raw_body)
    headers = event.headers or {}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return IntakeRequest(
        body=body,
        content_type=content_type,
        content_length=len(body),
        headers=headers,
        remote_addr=event.remote_addr,
        max_bytes=settings.HUB_MAX_BODY_BYTES,
        max_items=settings.HUB_MAX_ITEMS_PER_REQUEST,
    )


def _event_revalidate(event: InboundEvent, items: list[dict], *, now: datetime) -> list[int]:
    # Arrival time stays RDESK's (per lead, newer wins, so an old body cannot overwrite a
    # newer one); replayed_at makes retries age from now, not from the refusal.
    common = {
        "flow": event.flow,
        "received_at": event.received_at,
        "replayed_at": now,
        "remote_addr": event.remote_addr,
        "headers": event.headers,
        "raw_body": event.raw_body,
        "body_hash": event.body_hash,
    }
    ids = items_store(common=common, items=items, due=now)
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    listed = ", ".join(f"#{pk}" for pk in ids)
    InboundEvent.objects.filter(pk=event.pk).update(
        last_error=f"{event.last_error}\n{REVALIDATED_NOTE} {listed} on {stamp}.",
        updated_at=now,
    )
    return ids
