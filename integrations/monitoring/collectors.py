"""What the database knows, read at scrape time: the same figures from any web process.

A few indexed queries per scrape: events of the last day by flow and status (the
``received_at, status`` index), the backlog (``status, next_attempt_at``) and the
accounts with their tokens. All-time totals are left out on purpose: counting every
event ever stored at each scrape would grow with the table; rates come from the process
counters in ``metrics.py``.
"""

import logging
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from integrations.sync.dashboard import accounts_health, backlog_summary
from integrations.sync.models import InboundEvent

logger = logging.getLogger(__name__)

EVENTS_WINDOW = timedelta(hours=24)


class DatabaseCollector:
    """A prometheus-client custom collector over the hub's tables."""

    def collect(self):
        # Read whole before anything is written out: without a database the scrape still
        # answers, with the process counters and ``amohub_database_up 0``.
        try:
            families = list(self._families())
        except DatabaseError as error:
            logger.warning(
                "metrics without the database", extra={"error_class": type(error).__name__}
            )
            families = []
        up = GaugeMetricFamily(
            "amohub_database_up",
            "1 when the database answered this scrape.",
            value=float(bool(families)),
        )
        return [up, *families]

    def _families(self):
        now = timezone.now()
        events = GaugeMetricFamily(
            "amohub_events_last_day",
            "Events received in the last 24 hours, by flow and current status.",
            labels=["flow", "status"],
        )
        rows = (
            InboundEvent.objects.filter(received_at__gte=now - EVENTS_WINDOW)
            .values("flow__name", "status")
            .annotate(count=Count("id"))
            .order_by()
        )
        for row in rows:
            events.add_metric([row["flow__name"], row["status"]], row["count"])
        yield events

        backlog = backlog_summary(now=now)
        yield GaugeMetricFamily(
            "amohub_backlog_events",
            "Events not yet delivered (received or queued), paused ones included.",
            value=backlog.pending,
        )
        yield GaugeMetricFamily(
            "amohub_backlog_due_events", "Events due for delivery now.", value=backlog.due
        )
        yield GaugeMetricFamily(
            "amohub_backlog_paused_events",
            "Events waiting for their AmoCRM account to be reconnected.",
            value=backlog.paused,
        )
        yield GaugeMetricFamily(
            "amohub_backlog_oldest_age_seconds",
            "Age of the oldest event not yet delivered (0 when there is none).",
            value=backlog.oldest_age.total_seconds() if backlog.oldest_age else 0.0,
        )
        yield GaugeMetricFamily(
            "amohub_failed_events",
            "Events that failed and wait for a replay.",
            value=backlog.failed,
        )

        connected = GaugeMetricFamily(
            "amohub_amocrm_account_connected",
            "1 when the AmoCRM account is connected, 0 when an admin must reconnect it.",
            labels=["account"],
        )
        expiry = GaugeMetricFamily(
            "amohub_amocrm_token_expires_in_seconds",
            "Seconds until the account's access token expires (negative once it has).",
            labels=["account"],
        )
        refresh_age = GaugeMetricFamily(
            "amohub_amocrm_refresh_token_age_seconds",
            "Age of the account's refresh token; AmoCRM revokes it at three months.",
            labels=["account"],
        )
        for health in accounts_health(now=now):
            connected.add_metric([health.name], 1.0 if health.connected else 0.0)
            if health.token_expires_in is not None and not health.long_lived:
                expiry.add_metric([health.name], health.token_expires_in.total_seconds())
            if health.refresh_token_age is not None:
                refresh_age.add_metric([health.name], health.refresh_token_age.total_seconds())
        yield connected
        yield expiry
        yield refresh_age
