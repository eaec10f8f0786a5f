"""Failed events grouped by reason, for the dashboard: the same error but for its numbers.

Error texts may carry guests' data (AmoCRM echoes values), so each example is masked
with its own event's data, and the search that lists a group holds none of it.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, F, Func, Max, Min, TextField, Value

from integrations.sync.masking import Masker
from integrations.sync.models import EventStatus, InboundEvent

FAILURE_GROUPS = 10
# Without regexp_replace (SQLite, the embedded mode) reasons are grouped in Python over at
# most this many of the newest failed events.
PYTHON_SAMPLE = 10_000
# Digits only ([0-9], not \d): PostgreSQL's regexp_replace must group exactly as Python does.
_NUMBER = re.compile(r"[0-9]+")
NUMBER_PLACEHOLDER = "N"
# A search shorter than this would match nearly every failure.
MIN_SEARCH_FRAGMENT = 8
# Numbers, and every word a mask (``И***``, ``+7 *** ***``, ``***``) stands in.
_NOT_SEARCHABLE = re.compile(r"[0-9]+|\S*\*\S*")
_FRAGMENT_TRIM = " \t\r\n:;,.()'\"-"


def reason_normalise(text: str) -> str:
    """The error text with every number replaced: lead and field ids differ, the cause not."""
    return _NUMBER.sub(NUMBER_PLACEHOLDER, text)


@dataclass(frozen=True)
class FailureGroup:
    """Failed events whose error reads the same but for its numbers."""

    example: str  # the group's first error text, masked for the user when needed
    example_event_id: int
    count: int
    last_failed_at: datetime
    search: str  # a digit-free, personal-data-free fragment of the text, or ""


def search_fragment(*, text: str, masked: str) -> str:
    """The longest piece of an error text without digits or anything masking touched.

    It goes into a changelist URL (and so into access logs): it must hold no personal
    data, whoever looks, and it is only used when long enough to tell causes apart.
    ``masked`` is the text as masked with its event's data.
    """
    pieces = (piece.strip(_FRAGMENT_TRIM) for piece in _NOT_SEARCHABLE.split(masked))
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) < MIN_SEARCH_FRAGMENT:
            break
        if piece in text:
            return piece
    return ""


def failure_groups(
    *, user, limit: int = FAILURE_GROUPS, in_database: bool | None = None
) -> tuple[list[FailureGroup], bool]:
    """The most frequent reasons of failed events, and whether there are more groups.

    A failed event has not been replayed since it failed (a replay queues it again).
    Each example is masked with its own event's data: a group mixes guests.
    """
    failed = InboundEvent.objects.filter(status=EventStatus.FAILED)
    if in_database is None:
        in_database = connection.vendor == "postgresql"
    if in_database:
        reason = Func(
            F("last_error"),
            Value(_NUMBER.pattern),
            Value(NUMBER_PLACEHOLDER),
            Value("g"),
            function="regexp_replace",
            output_field=TextField(),
        )
        rows = list(
            failed.annotate(reason=reason)
            .values("reason")
            .annotate(count=Count("id"), last_failed_at=Max("updated_at"), example_id=Min("id"))
            .order_by("-count", "-last_failed_at")[: limit + 1]
        )
    else:
        rows = _failure_rows_in_python(failed)[: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    examples = (
        InboundEvent.objects.filter(pk__in=[row["example_id"] for row in rows])
        .only("id", "last_error", "payload")
        .order_by()
    )
    by_id = {event.pk: event for event in examples}
    groups = []
    for row in rows:
        event = by_id[row["example_id"]]
        masked = Masker(event.payload).text(event.last_error)
        shown = Masker.for_user(user, event.payload).text(event.last_error)
        groups.append(
            FailureGroup(
                example=shown,
                example_event_id=event.pk,
                count=row["count"],
                last_failed_at=row["last_failed_at"],
                search=search_fragment(text=event.last_error, masked=masked),
            )
        )
    return groups, more


def _failure_rows_in_python(failed) -> list[dict]:
    groups: dict[str, dict] = {}
    sample = failed.order_by("-id").values_list("id", "last_error", "updated_at")[:PYTHON_SAMPLE]
    for event_id, error, updated_at in sample:
        group = groups.setdefault(
            reason_normalise(error),
            {"count": 0, "last_failed_at": updated_at, "example_id": event_id},
        )
        group["count"] += 1
        group["last_failed_at"] = max(group["last_failed_at"], updated_at)
        group["example_id"] = min(group["example_id"], event_id)
    return sorted(groups.values(), key=lambda g: (-g["count"], -g["last_failed_at"].timestamp()))
