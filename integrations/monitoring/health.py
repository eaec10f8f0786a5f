"""Whether the hub can do its job now: database, broker, AmoCRM accounts, backlog.

``/readyz`` and ``manage.py hub_status`` show the same ``Readiness``. Each check is one
cheap step (a query on an index, a broker connection with a short timeout); secrets
never leave here, accounts are named by their names only.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Min
from django.utils import timezone

from integrations.amocrm.admin import REFRESH_TOKEN_LIFETIME
from integrations.sync.claims import PENDING
from integrations.sync.dashboard import accounts_health
from integrations.sync.models import InboundEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One thing checked: its name, whether it is fine, and what was seen (JSON-safe)."""

    name: str
    ok: bool
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def as_json(self) -> dict:
        return {
            "status": "ok" if self.ok else "fail",
            "failing": self.failing,
            "checks": {check.name: {"ok": check.ok, **check.detail} for check in self.checks},
        }


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return Check("database", False, {"error": type(error).__name__})
    return Check("database", True)


def broker_check(*, timeout: float | None = None, url: str | None = None) -> Check:
    """Connects to Celery's broker (or ``url``) once, giving up after ``timeout`` seconds."""
    from hub.celery import app

    timeout = settings.HUB_READY_BROKER_TIMEOUT if timeout is None else timeout
    try:
        with app.connection_for_write(url, connect_timeout=timeout) as broker:
            broker.ensure_connection(max_retries=0, timeout=timeout)
            if broker.transport.driver_type == "redis":
                # Connecting is lazy for Redis: a command proves the server answers.
                broker.default_channel.client.ping()
    except Exception as error:  # any broker error means the same here: not reachable
        logger.warning("broker unreachable", extra={"error_class": type(error).__name__})
        return Check("broker", False, {"error": type(error).__name__})
    return Check("broker", True)


def account_checks(*, now: datetime) -> list[Check]:
    """One check per account: connected, and a refresh token AmoCRM has not revoked."""
    checks = []
    for health in accounts_health(now=now):
        revoked = health.refresh_token_age is not None and (
            health.refresh_token_age >= REFRESH_TOKEN_LIFETIME
        )
        detail = {"connected": health.connected, "long_lived_token": health.long_lived}
        if health.token_expires_in is not None and not health.long_lived:
            detail["token_expires_in_seconds"] = round(health.token_expires_in.total_seconds())
        if health.refresh_token_age is not None:
            detail["refresh_token_age_days"] = health.refresh_token_age.days
        if not health.connected:
            detail["error"] = "disconnected"
        elif revoked:
            detail["error"] = "refresh token older than AmoCRM keeps it"
        checks.append(Check(f"account:{health.name}", health.connected and not revoked, detail))
    return checks


def oldest_due_age(*, now: datetime) -> timedelta | None:
    """How long the most overdue event has waited past its due time (one index lookup)."""
    oldest = InboundEvent.objects.filter(status__in=PENDING, next_attempt_at__lte=now).aggregate(
        oldest=Min("next_attempt_at")
    )["oldest"]
    return now - oldest if oldest is not None else None


def backlog_check(*, now: datetime) -> Check:
    threshold = settings.HUB_READY_BACKLOG_AGE
    age = oldest_due_age(now=now)
    seconds = round(age.total_seconds()) if age is not None else 0
    detail = {"oldest_due_age_seconds": seconds, "threshold_seconds": round(threshold)}
    if seconds > threshold:
        detail["error"] = "events wait past their due time: are the workers running?"
    return Check("backlog", seconds <= threshold, detail)


def readiness(*, now: datetime | None = None) -> Readiness:
    """Every check; without a database the rest cannot be judged and are left out."""
    now = now or timezone.now()
    database = database_check()
    if not database.ok:
        return Readiness([database, broker_check()])
    return Readiness([database, broker_check(), *account_checks(now=now), backlog_check(now=now)])
