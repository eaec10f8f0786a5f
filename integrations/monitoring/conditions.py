"""What counts as something wrong, as the hub's tables show it now.

Each condition gives the problems it sees, each with a key saying what it is about (an
account, a mapping) and a short Russian text (English msgids) an operator can act on.
Texts name accounts, flows and field ids only: never a guest's data, never a secret.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.utils.translation import gettext

from integrations.amocrm.models import Account, Token
from integrations.sync.claims import PENDING
from integrations.sync.mapping_checks import mappings_missing_field
from integrations.sync.models import EventStatus, InboundEvent

REASON_SHOWN = 300


@dataclass(frozen=True)
class Problem:
    key: str
    text: str


def accounts_disconnected(*, now: datetime) -> list[Problem]:
    """Accounts flows deliver to that an admin must (re)connect (a refresh refused, a token
    rejected, never connected): an account no flow uses holds nothing up."""
    problems = []
    accounts = Account.objects.filter(state=Account.State.DISCONNECTED, flows__isnull=False)
    for account in accounts.distinct().order_by("name"):
        text = gettext(
            "AmoCRM account %(account)s is disconnected; its events wait. Reconnect it in "
            "the admin (Accounts)."
        ) % {"account": account.name}
        if account.state_reason:
            text += "\n" + gettext("Reason: %(reason)s") % {
                "reason": account.state_reason[:REASON_SHOWN]
            }
        problems.append(Problem(f"account-disconnected:{account.pk}", text))
    return problems


def refresh_tokens_old(*, now: datetime) -> list[Problem]:
    """OAuth refresh tokens nearing the three months after which AmoCRM revokes them."""
    days = settings.HUB_ALERT_REFRESH_TOKEN_AGE_DAYS
    tokens = (
        Token.objects.filter(
            refreshed_at__lte=now - timedelta(days=days),
            account__state=Account.State.CONNECTED,
            account__long_lived_token="",
        )
        .exclude(refresh_token="")
        .select_related("account")
        .order_by("account__name")
    )
    return [
        Problem(
            f"refresh-token-old:{token.account_id}",
            gettext(
                "The refresh token of AmoCRM account %(account)s is %(days)s days old; AmoCRM "
                "revokes it at 90 days. Check that beat refreshes tokens, or reconnect the "
                "account."
            )
            % {"account": token.account.name, "days": (now - token.refreshed_at).days},
        )
        for token in tokens
    ]


def failed_events(*, now: datetime) -> list[Problem]:
    """More events failed within the window than the threshold allows."""
    window = settings.HUB_ALERT_FAILED_WINDOW
    count = InboundEvent.objects.filter(
        status=EventStatus.FAILED, updated_at__gte=now - timedelta(seconds=window)
    ).count()
    if count <= settings.HUB_ALERT_FAILED_THRESHOLD:
        return []
    return [
        Problem(
            "failed-events",
            gettext(
                "Events failed in the last %(minutes)s min: %(count)s (threshold "
                "%(threshold)s). See Inbound events, status Failed."
            )
            % {
                "count": count,
                "minutes": round(window / 60),
                "threshold": settings.HUB_ALERT_FAILED_THRESHOLD,
            },
        )
    ]


def backlog_old(*, now: datetime) -> list[Problem]:
    """An event still undelivered longer after its arrival than the threshold."""
    threshold = settings.HUB_ALERT_BACKLOG_AGE
    # A replayed or re-validated event keeps its arrival time: it waits since it was sent
    # again, not since RDESK posted it.
    oldest = InboundEvent.objects.filter(status__in=PENDING).aggregate(
        oldest=Min(Coalesce("replayed_at", "received_at"))
    )["oldest"]
    if oldest is None or (now - oldest).total_seconds() <= threshold:
        return []
    return [
        Problem(
            "backlog-age",
            gettext(
                "The oldest undelivered event arrived %(minutes)s min ago (threshold "
                "%(threshold)s min). Check the workers and the AmoCRM accounts."
            )
            % {
                "minutes": round((now - oldest).total_seconds() / 60),
                "threshold": round(threshold / 60),
            },
        )
    ]


def mappings_field_missing(*, now: datetime) -> list[Problem]:
    """Mappings whose AmoCRM field is gone from the catalogue (refreshed daily)."""
    return [
        Problem(
            f"mapping-field-missing:{mapping.pk}",
            gettext(
                "Flow %(flow)s maps %(source)s to AmoCRM field %(field)s, which is no longer "
                "in the account's catalogue: its value is not sent. Choose another field."
            )
            % {"flow": mapping.flow.name, "source": mapping.source, "field": mapping.field_id},
        )
        for mapping in mappings_missing_field()
    ]


CONDITIONS = (
    accounts_disconnected,
    refresh_tokens_old,
    failed_events,
    backlog_old,
    mappings_field_missing,
)


def problems_find(*, now: datetime) -> list[Problem]:
    """Everything wrong now, by every condition."""
    return [problem for condition in CONDITIONS for problem in condition(now=now)]
