"""Judges rejected bodies again against the current schemas and item limit.

The same re-validation as the events admin's action (``integrations.sync.revalidation``):
bodies that pass now become events queued for delivery; the rejected events stay, noting
which events they became. Running it twice creates nothing new.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, ngettext

from integrations.sync.management.event_filters import flow_and_since_arguments, moment_parse
from integrations.sync.replay import FilterError, events_matching
from integrations.sync.revalidation import events_revalidate, rejudgeable_events


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return gettext(
            "Validate rejected events' stored bodies again (after an upgrade, a schema "
            "change or a raised item limit) and queue those that pass for delivery."
        )

    def add_arguments(self, parser):
        flow_and_since_arguments(parser)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Only say what would pass; change nothing."),
        )

    def handle(self, *args, **options):
        try:
            events = events_matching(
                flow=options["flow"], since=moment_parse(options["since"], "--since")
            )
        except FilterError as error:
            raise CommandError(str(error)) from error
        judged = rejudgeable_events(events).count()
        outcome = events_revalidate(events=events, dry_run=options["dry_run"])
        accepted, invalid = len(outcome.accepted), len(outcome.still_invalid)
        self.stdout.write(
            ngettext(
                "%(count)d rejected event can be judged again.",
                "%(count)d rejected events can be judged again.",
                judged,
            )
            % {"count": judged}
        )
        if options["dry_run"]:
            self.stdout.write(
                ngettext(
                    "Dry run: %(count)d would pass and be queued for delivery; nothing was "
                    "changed.",
                    "Dry run: %(count)d would pass and be queued for delivery; nothing was "
                    "changed.",
                    accepted,
                )
                % {"count": accepted}
            )
        else:
            for rejected, ids in sorted(outcome.accepted.items()):
                self.stdout.write(
                    gettext("#%(rejected)d -> %(events)s")
                    % {"rejected": rejected, "events": ", ".join(f"#{pk}" for pk in ids)}
                )
            self.stdout.write(
                ngettext(
                    "%(count)d passed: %(items)d new events queued for delivery.",
                    "%(count)d passed: %(items)d new events queued for delivery.",
                    accepted,
                )
                % {"count": accepted, "items": outcome.items}
            )
        self.stdout.write(
            ngettext(
                "%(count)d is still not valid and stays rejected.",
                "%(count)d are still not valid and stay rejected.",
                invalid,
            )
            % {"count": invalid}
        )
