"""Sends the events a filter selects to AmoCRM again, in chunks, with a progress bar.

The events and their filters are the ones the admin's replay uses
(``integrations.sync.replay``); each replay is recorded as made by this command.
"""

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils.translation import gettext, ngettext, pgettext
from tqdm import tqdm

from integrations.sync.management.event_filters import flow_and_since_arguments, moment_parse
from integrations.sync.models import EventStatus, Replay
from integrations.sync.replay import (
    PENDING,
    REPLAYABLE,
    FilterError,
    events_matching,
    events_replay,
)

CHUNK_SIZE = 500


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language; argparse cannot
        # take a lazy string.
        return gettext(
            "Send finished events (failed by default) to AmoCRM again. Their attempt counts "
            "and earlier attempts are kept; each replay is recorded."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status",
            action="append",
            choices=EventStatus.values,
            help=gettext("Status of the events to pick; repeat for several (default: failed)."),
        )
        flow_and_since_arguments(parser)
        parser.add_argument(
            "--until",
            help=gettext(
                "Received on or before this date (the whole day) or time, in the hub's time "
                "zone unless an offset is given."
            ),
        )
        parser.add_argument("--lead-id", help=gettext("RDESK lead id."))
        parser.add_argument("--rdesk-id", help=gettext("RDESK id of the bill or card."))
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Only count the matching events; change nothing."),
        )
        parser.add_argument(
            "--yes", action="store_true", help=gettext("Do not ask for confirmation.")
        )
        parser.add_argument(
            "--user", help=gettext("Username recorded as the one who asked for the replay.")
        )

    def handle(self, *args, **options):
        user = _user_find(options["user"])
        try:
            events = events_matching(
                status=options["status"] or [EventStatus.FAILED],
                flow=options["flow"],
                since=moment_parse(options["since"], "--since"),
                until=moment_parse(options["until"], "--until"),
                lead_id=options["lead_id"],
                rdesk_id=options["rdesk_id"],
            )
        except FilterError as error:
            raise CommandError(str(error)) from error

        counts = dict(
            events.order_by()
            .values("status")
            .annotate(count=Count("pk"))
            .values_list("status", "count")
        )
        replayable = events.filter(status__in=REPLAYABLE, pruned_at__isnull=True)
        ids = list(replayable.values_list("pk", flat=True))
        if options["dry_run"]:
            self._summary_write(counts, replayed=None)
            self.stdout.write(
                ngettext(
                    "Dry run: %(count)d event(s) would be replayed; nothing was changed.",
                    "Dry run: %(count)d event(s) would be replayed; nothing was changed.",
                    len(ids),
                )
                % {"count": len(ids)}
            )
            return
        if ids and not options["yes"] and sys.stdin.isatty() and not self._confirmed(len(ids)):
            self.stdout.write(gettext("Cancelled; nothing was replayed."))
            return
        replayed = self._replay(ids, user=user) if ids else 0
        self._summary_write(counts, replayed=replayed)

    def _confirmed(self, count: int) -> bool:
        self.stdout.write(
            ngettext(
                "Replay %(count)d event(s)? [y/N] ", "Replay %(count)d event(s)? [y/N] ", count
            )
            % {"count": count},
            ending="",
        )
        self.stdout.flush()
        try:
            answer = input().strip().lower()
        except (EOFError, KeyboardInterrupt):
            return False
        return answer in {"y", "yes", gettext("y"), gettext("yes")}

    def _replay(self, ids: list[int], *, user) -> int:
        """Replays chunk by chunk, each in its own transaction, showing how far it got."""
        # A bar redrawn in place is only readable on a terminal; elsewhere (logs, cron)
        # a line per chunk says the same.
        terminal = self.stderr.isatty()
        total = len(ids)
        replayed = 0
        with tqdm(
            total=total,
            desc=gettext("Replaying"),
            unit=pgettext("progress bar unit", "event"),
            file=_RawStream(self.stderr),
            disable=not terminal,
        ) as bar:
            for start in range(0, total, CHUNK_SIZE):
                chunk = ids[start : start + CHUNK_SIZE]
                replayed += events_replay(event_ids=chunk, user=user, source=Replay.Source.COMMAND)
                bar.update(len(chunk))
                if not terminal:
                    self.stderr.write(
                        gettext("Progress: %(done)d of %(total)d checked, %(replayed)d replayed.")
                        % {"done": start + len(chunk), "total": total, "replayed": replayed},
                        style_func=str,
                    )
        return replayed

    def _summary_write(self, counts: dict[str, int], *, replayed: int | None) -> None:
        write = self.stdout.write
        matched = sum(counts.values())
        write(
            ngettext("Matched: %(count)d event(s).", "Matched: %(count)d event(s).", matched)
            % {"count": matched}
        )
        for status in EventStatus.values:
            if counts.get(status):
                write(f"  {status}: {counts[status]}")
        replayable = sum(counts.get(status, 0) for status in REPLAYABLE)
        if replayed is not None:
            write(gettext("Replayed: %(count)d.") % {"count": replayed})
            if replayed < replayable:
                write(
                    gettext("Changed meanwhile, not replayed: %(count)d.")
                    % {"count": replayable - replayed}
                )
        pending = sum(counts.get(status, 0) for status in PENDING)
        if pending:
            write(
                gettext("Left alone (pending, already on their way): %(count)d.")
                % {"count": pending}
            )
        rejected = counts.get(EventStatus.REJECTED, 0)
        if rejected:
            write(
                gettext("Not replayable (rejected, nothing to send): %(count)d.")
                % {"count": rejected}
            )


class _RawStream:
    """A command's output stream as tqdm needs it: text written as is, no newline added."""

    def __init__(self, wrapper):
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self._wrapper.flush()

    def __getattr__(self, name):
        return getattr(self._wrapper, name)


def _user_find(username: str | None):
    if not username:
        return None
    model = get_user_model()
    try:
        return model.objects.get(**{model.USERNAME_FIELD: username})
    except model.DoesNotExist:
        raise CommandError(gettext("No user '%(user)s'.") % {"user": username}) from None
