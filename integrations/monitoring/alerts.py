"""Alerts: an incident per problem, one message per channel when it opens and one when
it clears.

Run by beat every minute (``tasks.evaluate_alerts``). A message that could not be sent
is recorded as failed and tried again at the next run, until it goes out (a problem
message while its incident is open, a recovery message for a day after). A channel that
fails once is left alone for the rest of the run, so a dead one costs one timeout a
minute and never holds up anything else.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from integrations.monitoring.channels import channels_configured
from integrations.monitoring.conditions import Problem, problems_find
from integrations.monitoring.models import Incident, SentAlert

logger = logging.getLogger(__name__)

# Recovery messages still owed are tried this long after the incident cleared.
RECOVERY_RETRY = timedelta(days=1)


@dataclass
class Run:
    """What one evaluation did."""

    opened: int = 0
    resolved: int = 0
    sent: int = 0
    failed: int = 0


def incidents_update(problems: list[Problem], *, now: datetime) -> tuple[int, int]:
    """Opens an incident per new problem and resolves those that cleared: (opened, resolved)."""
    by_key = {problem.key: problem for problem in problems}
    open_keys = set(Incident.objects.filter(resolved_at__isnull=True).values_list("key", flat=True))
    opened = 0
    for key in by_key.keys() - open_keys:
        try:
            with transaction.atomic():
                Incident.objects.create(key=key, summary=by_key[key].text, opened_at=now)
        except IntegrityError:
            continue  # another run opened it meanwhile: one incident still
        opened += 1
        logger.warning("incident opened", extra={"incident": key})
    cleared = open_keys - by_key.keys()
    resolved = Incident.objects.filter(resolved_at__isnull=True, key__in=cleared).update(
        resolved_at=now
    )
    for key in cleared:
        logger.info("incident resolved", extra={"incident": key})
    return opened, resolved


def _message(incident: Incident, kind: str) -> str:
    if kind == SentAlert.Kind.OPENED:
        return gettext("Problem: %(summary)s") % {"summary": incident.summary}
    return gettext("Resolved: %(summary)s") % {"summary": incident.summary}


def _owed(incident: Incident, channel: str, done: set) -> str | None:
    """The message ``channel`` still owes for ``incident``, if any."""
    told = (incident.pk, SentAlert.Kind.OPENED, channel) in done
    if incident.is_open:
        return None if told else SentAlert.Kind.OPENED
    if told and (incident.pk, SentAlert.Kind.RESOLVED, channel) not in done:
        return SentAlert.Kind.RESOLVED
    return None


def messages_send(*, now: datetime) -> tuple[int, int]:
    """Sends every message still owed to every channel: (sent, failed)."""
    channels = channels_configured()
    if not channels:
        return 0, 0
    incidents = list(
        Incident.objects.filter(resolved_at__isnull=True)
        | Incident.objects.filter(resolved_at__gte=now - RECOVERY_RETRY)
    )
    done = set(
        SentAlert.objects.filter(
            incident__in=incidents, outcome=SentAlert.Outcome.SENT
        ).values_list("incident_id", "kind", "channel")
    )
    dead: set[str] = set()
    sent = failed = 0
    for incident in sorted(incidents, key=lambda i: (i.opened_at, i.pk)):
        for channel in channels:
            if channel.name in dead:
                continue
            kind = _owed(incident, channel.name, done)
            if kind is None:
                continue
            text = _message(incident, kind)
            delivery = channel.send(text)
            SentAlert.objects.create(
                incident=incident,
                kind=kind,
                channel=channel.name,
                text=text,
                sent_at=timezone.now(),
                outcome=SentAlert.Outcome.SENT if delivery.ok else SentAlert.Outcome.FAILED,
                error=delivery.error,
            )
            if delivery.ok:
                sent += 1
            else:
                failed += 1
                dead.add(channel.name)
    return sent, failed


def alerts_evaluate(*, now: datetime | None = None) -> Run:
    """Finds what is wrong, updates the incidents, sends what is owed (beat, every minute)."""
    now = now or timezone.now()
    with translation.override(settings.LANGUAGE_CODE):
        opened, resolved = incidents_update(problems_find(now=now), now=now)
        sent, failed = messages_send(now=now)
    return Run(opened=opened, resolved=resolved, sent=sent, failed=failed)
