"""The hub's state for an operator at a terminal: what /readyz says, the backlog by flow,
the last errors. Exits non-zero when the hub is not ready.

Error texts are masked with their own event's data and cut to their first line: the
output may be pasted into a ticket.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from integrations.monitoring.health import readiness
from integrations.sync.claims import PENDING
from integrations.sync.masking import Masker
from integrations.sync.models import EventStatus, InboundEvent

ERROR_SHOWN = 120


def backlog_by_flow(*, now) -> list[dict]:
    """Per flow: events pending (due now, scheduled, paused) and failed."""
    pending = Q(status__in=PENDING)
    rows = (
        InboundEvent.objects.filter(status__in=[*PENDING, EventStatus.FAILED])
        .values("flow__name")
        .annotate(
            pending=Count("id", filter=pending),
            due=Count("id", filter=pending & Q(next_attempt_at__lte=now)),
            scheduled=Count("id", filter=pending & Q(next_attempt_at__gt=now)),
            paused=Count("id", filter=pending & Q(next_attempt_at__isnull=True)),
            failed=Count("id", filter=Q(status=EventStatus.FAILED)),
        )
        .order_by("flow__name")
    )
    return [{"flow": row.pop("flow__name"), **row} for row in rows]


def last_errors(*, limit: int) -> list[dict]:
    """The newest failed events: id, flow, when, the first line of the error (masked)."""
    events = (
        InboundEvent.objects.filter(status=EventStatus.FAILED)
        .select_related("flow")
        .only("id", "flow__name", "updated_at", "last_error", "payload")
        .order_by("-updated_at", "-id")[:limit]
    )
    errors = []
    for event in events:
        first_line = (event.last_error.splitlines() or [""])[0]
        errors.append(
            {
                "id": event.pk,
                "flow": event.flow.name,
                "failed_at": event.updated_at,
                "error": Masker(event.payload).text(first_line)[:ERROR_SHOWN],
            }
        )
    return errors


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return gettext(
            "Show the hub's readiness (as /readyz), the backlog by flow and the last errors; "
            "exit with status 1 when not ready."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--errors",
            type=int,
            default=10,
            help=gettext("How many of the last failed events to show (default 10)."),
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help=gettext("Print JSON.")
        )

    def handle(self, *args, errors: int, as_json: bool, **options):
        now = timezone.now()
        ready = readiness(now=now)
        report = {"readiness": ready.as_json()}
        if ready.checks[0].ok:  # the database answers: the rest can be read
            report["backlog"] = backlog_by_flow(now=now)
            report["last_errors"] = last_errors(limit=max(0, errors))
        if as_json:
            self.stdout.write(_json_dump(report))
        else:
            self._print(ready, report)
        if not ready.ok:
            raise CommandError(gettext("Not ready: %(what)s") % {"what": ", ".join(ready.failing)})

    def _print(self, ready, report) -> None:
        ok, fail = gettext("ok"), gettext("FAIL")
        self.stdout.write(gettext("Readiness: %(state)s") % {"state": ok if ready.ok else fail})
        for check in ready.checks:
            shown = ", ".join(f"{key}={value}" for key, value in check.detail.items())
            line = f"  [{ok if check.ok else fail}] {check.name}"
            self.stdout.write(f"{line}  {shown}" if shown else line)
        if "backlog" not in report:
            return
        self.stdout.write(gettext("Backlog by flow:"))
        if not report["backlog"]:
            self.stdout.write("  " + gettext("nothing waiting, nothing failed"))
        for row in report["backlog"]:
            self.stdout.write(
                "  "
                + gettext(
                    "%(flow)s: pending %(pending)s (due %(due)s, scheduled %(scheduled)s, "
                    "paused %(paused)s), failed %(failed)s"
                )
                % row
            )
        self.stdout.write(gettext("Last errors:"))
        if not report["last_errors"]:
            self.stdout.write("  " + gettext("none"))
        for error in report["last_errors"]:
            when = date_format(timezone.localtime(error["failed_at"]), "SHORT_DATETIME_FORMAT")
            self.stdout.write(f"  #{error['id']} {error['flow']} {when}: {error['error']}")


def _json_dump(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, default=lambda value: value.isoformat())
