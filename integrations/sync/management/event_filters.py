"""The event filters the commands share (``replay_events``, ``revalidate_events``)."""

from datetime import date, datetime

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext


def flow_and_since_arguments(parser) -> None:
    """``--flow`` and ``--since``, as ``replay.events_matching`` takes them."""
    parser.add_argument("--flow", help=gettext("Flow id, name or endpoint path."))
    parser.add_argument(
        "--since",
        help=gettext(
            "Received on or after this date or time (YYYY-MM-DD or YYYY-MM-DD HH:MM), "
            "in the hub's time zone unless an offset is given."
        ),
    )


def moment_parse(text: str | None, option: str) -> date | datetime | None:
    """A date (a whole day) or a moment; naive moments are in the hub's time zone."""
    if not text:
        return None
    try:
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError:
        day = moment = None
    if day:
        return day
    if moment is None:
        raise CommandError(
            gettext("%(option)s: '%(value)s' is not a date or time (YYYY-MM-DD [HH:MM]).")
            % {"option": option, "value": text}
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
