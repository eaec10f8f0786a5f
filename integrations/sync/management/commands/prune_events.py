"""Replaces the personal data of events older than the retention policy by masked summaries.

Beat runs the same service daily (``integrations.sync.tasks.prune_events``); this command
shows the policy's cut-offs and what is due, and with ``--dry-run`` changes nothing.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.translation import gettext

from integrations.sync.models import EventStatus
from integrations.sync.retention import events_prune, retention_rules


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language.
        return gettext(
            "Replace the bodies of events older than the retention policy by summaries "
            "without personal data; audit metadata is kept."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Show what would be pruned, by status, and change nothing."),
        )

    def handle(self, *args, dry_run: bool, **options):
        now = timezone.now()
        rules = retention_rules(now)
        due = {}
        for rule in rules:
            self.stdout.write(
                gettext("%(rule)s: kept %(days)d days; received before %(cutoff)s is due.")
                % {
                    "rule": rule.label,
                    "days": rule.days,
                    "cutoff": f"{timezone.localtime(rule.cutoff):%Y-%m-%d %H:%M %Z}",
                }
            )
            due.update(rule.due_counts())
        if dry_run:
            for status, count in due.items():
                self.stdout.write(
                    gettext("%(status)s: %(count)d would be pruned.")
                    % {"status": EventStatus(status).label, "count": count}
                )
            self.stdout.write(gettext("Dry run: nothing was changed."))
            return
        pruned = events_prune(now=now)
        for status in due:
            self.stdout.write(
                gettext("%(status)s: %(count)d pruned.")
                % {"status": EventStatus(status).label, "count": pruned.get(status, 0)}
            )
