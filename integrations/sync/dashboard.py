"""The figures of the admin's front page: traffic, delivery time, backlog, failures, accounts.

Each figure is one aggregate query, filtered by time range or status first so that it
stays on the indexes of ``InboundEvent`` (``received_at``; ``status, next_attempt_at``)
with millions of events. Days and hours are those of the current time zone. Nothing here
renders: ``charts.py`` and the ``dashboard`` template tags do. Failed events are grouped
by reason in ``failure_reasons.py``.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Q,
)
from django.db.models.functions import Coalesce, TruncDate, TruncHour
from django.utils import timezone

from integrations.amocrm.admin import REFRESH_TOKEN_LIFETIME
from integrations.amocrm.models import Account
from integrations.sync.delivery import PENDING
from integrations.sync.failure_reasons import FailureGroup, failure_groups
from integrations.sync.mapping_checks import mappings_missing_field
from integrations.sync.models import EventStatus, InboundEvent

LATENCY_WINDOWS = (timedelta(hours=24), timedelta(days=7))
PERCENTILES = (0.5, 0.9, 0.99)
# Without percentile_cont (SQLite, the embedded mode) percentiles are computed in Python
# over at most this many of the newest deliveries.
PYTHON_SAMPLE = 10_000


def _in_database(in_database: bool | None) -> bool:
    return connection.vendor == "postgresql" if in_database is None else in_database


# --- Events per day and per hour ------------------------------------------------------


@dataclass(frozen=True)
class StatusBucket:
    """Events received in one local day (a ``date``) or hour (an aware ``datetime``)."""

    start: date | datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _buckets(starts, rows, key) -> list[StatusBucket]:
    counts = {start: defaultdict(int) for start in starts}
    for row in rows:
        bucket = counts.get(key(row["bucket"]))
        if bucket is not None:
            bucket[row["status"]] += row["count"]
    return [StatusBucket(start=start, counts=dict(counts[start])) for start in starts]


def events_by_day(*, now: datetime, days: int = 30, tz: tzinfo | None = None) -> list[StatusBucket]:
    """Events per local day and status, oldest day first, today last; empty days too."""
    tz = tz or timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    starts = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    # Local midnights: an event at 23:30 UTC belongs to the next Moscow day.
    since = datetime.combine(starts[0], time.min, tzinfo=tz)
    until = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
    rows = (
        InboundEvent.objects.filter(received_at__gte=since, received_at__lt=until)
        .annotate(bucket=TruncDate("received_at", tzinfo=tz))
        .values("bucket", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    return _buckets(starts, rows, key=lambda day: day)


def events_by_hour(
    *, now: datetime, hours: int = 24, tz: tzinfo | None = None
) -> list[StatusBucket]:
    """Events per local hour and status over the last ``hours`` hours, this hour last."""
    tz = tz or timezone.get_current_timezone()
    this_hour = timezone.localtime(now, tz).replace(minute=0, second=0, microsecond=0)
    # Stepping in UTC avoids wall-clock arithmetic across a daylight-saving change.
    last = this_hour.astimezone(UTC)
    starts = [last - timedelta(hours=offset) for offset in range(hours - 1, -1, -1)]
    rows = (
        InboundEvent.objects.filter(
            received_at__gte=starts[0], received_at__lt=last + timedelta(hours=1)
        )
        .annotate(bucket=TruncHour("received_at", tzinfo=tz))
        .values("bucket", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    buckets = _buckets(starts, rows, key=lambda hour: hour.astimezone(UTC))
    return [StatusBucket(start=b.start.astimezone(tz), counts=b.counts) for b in buckets]


# --- Delivery time ---------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile (interpolated, as ``percentile()`` below)."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction: float, **extra):
        # A float from PERCENTILES, never user input: safe to put into the SQL text.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentile(values: list[timedelta], fraction: float) -> timedelta | None:
    """The interpolated percentile of sorted values, as ``percentile_cont`` computes it."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(values) - 1)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


@dataclass(frozen=True)
class Latency:
    """How long deliveries took, for events delivered within ``window`` before now."""

    window: timedelta
    count: int
    p50: timedelta | None
    p90: timedelta | None
    p99: timedelta | None
    maximum: timedelta | None


def _latency_start():
    # A replay is a new request: the time counts from it, not from the first arrival.
    return Coalesce("replayed_at", "received_at", output_field=DateTimeField())


def latency_percentiles(
    *,
    now: datetime,
    windows: tuple[timedelta, ...] = LATENCY_WINDOWS,
    in_database: bool | None = None,
) -> list[Latency]:
    """p50, p90, p99 and maximum of the time from arrival (or replay) to delivery.

    The query is bounded by ``received_at`` (indexed): an event cannot be delivered
    automatically later than the retry age after it arrived, so events received before
    the widest window plus that age are left out (replays of such old events included).
    """
    widest = max(windows)
    delivered = InboundEvent.objects.filter(
        status=EventStatus.DELIVERED,
        received_at__gte=now - widest - timedelta(seconds=settings.HUB_RETRY_MAX_AGE),
        delivered_at__gte=now - widest,
        delivered_at__lte=now,
    )
    if not _in_database(in_database):
        return _latency_in_python(delivered, now=now, windows=windows)
    took = ExpressionWrapper(F("delivered_at") - _latency_start(), output_field=DurationField())
    aggregates = {}
    for index, window in enumerate(windows):
        within = Q(delivered_at__gte=now - window)
        aggregates[f"count_{index}"] = Count("id", filter=within)
        aggregates[f"maximum_{index}"] = Max(took, filter=within)
        for fraction in PERCENTILES:
            aggregates[f"p{round(fraction * 100)}_{index}"] = PercentileCont(
                took, fraction, filter=within, output_field=DurationField()
            )
    row = delivered.aggregate(**aggregates)
    return [
        Latency(
            window=window,
            count=row[f"count_{index}"],
            p50=row[f"p50_{index}"],
            p90=row[f"p90_{index}"],
            p99=row[f"p99_{index}"],
            maximum=row[f"maximum_{index}"],
        )
        for index, window in enumerate(windows)
    ]


def _latency_in_python(delivered, *, now, windows) -> list[Latency]:
    rows = list(
        delivered.annotate(started=_latency_start())
        .order_by("-delivered_at")
        .values_list("started", "delivered_at")[:PYTHON_SAMPLE]
    )
    results = []
    for window in windows:
        took = sorted(done - started for started, done in rows if done >= now - window)
        results.append(
            Latency(
                window=window,
                count=len(took),
                p50=percentile(took, 0.5),
                p90=percentile(took, 0.9),
                p99=percentile(took, 0.99),
                maximum=took[-1] if took else None,
            )
        )
    return results


# --- Backlog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """Events not yet delivered (received or queued), and failed ones."""

    pending: int
    oldest_received_at: datetime | None
    oldest_age: timedelta | None
    # Waiting for an admin to reconnect the account: no due time at all.
    paused: int
    due: int
    scheduled: int
    failed: int


def backlog_summary(*, now: datetime) -> Backlog:
    """One pass over the ``status, next_attempt_at`` index."""
    pending = Q(status__in=PENDING)
    row = InboundEvent.objects.filter(status__in=[*PENDING, EventStatus.FAILED]).aggregate(
        pending=Count("id", filter=pending),
        oldest=Min("received_at", filter=pending),
        paused=Count("id", filter=pending & Q(next_attempt_at__isnull=True)),
        due=Count("id", filter=pending & Q(next_attempt_at__lte=now)),
        scheduled=Count("id", filter=pending & Q(next_attempt_at__gt=now)),
        failed=Count("id", filter=Q(status=EventStatus.FAILED)),
    )
    oldest = row["oldest"]
    return Backlog(
        pending=row["pending"],
        oldest_received_at=oldest,
        oldest_age=now - oldest if oldest else None,
        paused=row["paused"],
        due=row["due"],
        scheduled=row["scheduled"],
        failed=row["failed"],
    )


# --- Accounts and mappings -----------------------------------------------------------


@dataclass(frozen=True)
class AccountHealth:
    """What an admin checks about an account's connection; no secret leaves this module."""

    pk: int
    name: str
    connected: bool
    state_label: str
    state_reason: str
    state_changed_at: datetime
    long_lived: bool
    token_expires_at: datetime | None
    token_expires_in: timedelta | None  # negative once expired
    refresh_token_age: timedelta | None
    refresh_days_left: int | None

    @property
    def token_expired(self) -> bool:
        return self.token_expires_in is not None and self.token_expires_in <= timedelta(0)


def accounts_health(*, now: datetime) -> list[AccountHealth]:
    """Every account with its token pair, in one query."""
    healths = []
    for account in Account.objects.select_related("token").order_by("name"):
        token = getattr(account, "token", None)
        has_refresh = token is not None and bool(token.refresh_token)
        age = now - token.refreshed_at if has_refresh else None
        healths.append(
            AccountHealth(
                pk=account.pk,
                name=account.name,
                connected=account.state == Account.State.CONNECTED,
                state_label=str(Account.State(account.state).label),
                state_reason=account.state_reason,
                state_changed_at=account.state_changed_at,
                long_lived=bool(account.long_lived_token),
                token_expires_at=token.expires_at if token else None,
                token_expires_in=token.expires_at - now if token else None,
                refresh_token_age=age,
                refresh_days_left=max((REFRESH_TOKEN_LIFETIME - age).days, 0) if age else None,
            )
        )
    return healths


@dataclass(frozen=True)
class MissingField:
    """An enabled mapping whose AmoCRM field is gone from the fetched catalogue."""

    flow_id: int
    flow_name: str
    source: str
    field_id: int
    field_type: str


def missing_fields() -> list[MissingField]:
    return [
        MissingField(
            flow_id=mapping.flow_id,
            flow_name=mapping.flow.name,
            source=mapping.source,
            field_id=mapping.field_id,
            field_type=mapping.field_type,
        )
        for mapping in mappings_missing_field()
    ]


# --- Everything at once ----------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    days: list[StatusBucket]
    hours: list[StatusBucket]
    latencies: list[Latency]
    backlog: Backlog
    failures: list[FailureGroup]
    more_failures: bool
    accounts: list[AccountHealth]
    missing_fields: list[MissingField]


def dashboard_build(*, user, now: datetime | None = None) -> Dashboard:
    """All figures of the front page, for ``user`` (who decides what is masked)."""
    now = now or timezone.now()
    failures, more_failures = failure_groups(user=user)
    return Dashboard(
        now=now,
        days=events_by_day(now=now),
        hours=events_by_hour(now=now),
        latencies=latency_percentiles(now=now),
        backlog=backlog_summary(now=now),
        failures=failures,
        more_failures=more_failures,
        accounts=accounts_health(now=now),
        missing_fields=missing_fields(),
    )
