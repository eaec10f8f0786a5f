"""Template tags of the admin front page: the dashboard's figures, charts and durations."""

from datetime import timedelta
from urllib.parse import urlencode

from django import template
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext

from integrations.sync.charts import STATUS_ORDER, Bar, legend, stacked_bars_svg
from integrations.sync.dashboard import StatusBucket, dashboard_build
from integrations.sync.mapping_types import field_type_name
from integrations.sync.models import EventStatus

register = template.Library()

DAY_LABEL_EVERY = 5
HOUR_LABEL_EVERY = 3
VIEW_PERMISSION = "sync.view_inboundevent"


def dashboard_allowed(user) -> bool:
    """Every role reads the dashboard; a staff user without the audit trail does not."""
    return bool(user and user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION))


def _bar_title(when: str, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    lines = [
        ngettext("%(when)s: %(count)s event", "%(when)s: %(count)s events", total)
        % {"when": when, "count": number_format(total)}
    ]
    lines += [
        gettext("%(status)s: %(count)s")
        % {"status": EventStatus(status).label, "count": number_format(counts[status])}
        for status in STATUS_ORDER
        if counts.get(status)
    ]
    return "\n".join(lines)


def _bars(buckets: list[StatusBucket], *, every: int, label_format: str, title_format: str):
    last = len(buckets) - 1
    return [
        Bar(
            counts=bucket.counts,
            # Counted back from the newest bucket, so today and this hour are labelled.
            label=date_format(bucket.start, label_format) if (last - i) % every == 0 else "",
            title=_bar_title(date_format(bucket.start, title_format), bucket.counts),
        )
        for i, bucket in enumerate(buckets)
    ]


def _changelist(**filters) -> str:
    url = reverse("admin:sync_inboundevent_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


@register.simple_tag(takes_context=True)
def sync_dashboard(context):
    """The dashboard for the request's user, or None when they may not see it."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not dashboard_allowed(user):
        return None
    figures = dashboard_build(user=user)
    failed = {"status__exact": EventStatus.FAILED}
    return {
        "figures": figures,
        "days_chart": stacked_bars_svg(
            bars=_bars(
                figures.days,
                every=DAY_LABEL_EVERY,
                label_format="d.m",
                title_format="SHORT_DATE_FORMAT",
            ),
            description=gettext("Events per day and status, last 30 days"),
        ),
        "hours_chart": stacked_bars_svg(
            bars=_bars(
                figures.hours,
                every=HOUR_LABEL_EVERY,
                label_format="H:i",
                title_format="SHORT_DATETIME_FORMAT",
            ),
            description=gettext("Events per hour and status, last 24 hours"),
        ),
        "legend": legend(),
        "pending_url": _changelist(status__in=f"{EventStatus.RECEIVED},{EventStatus.QUEUED}"),
        "failed_url": _changelist(**failed),
        "failures": [
            (
                group,
                _changelist(
                    **failed, **({"last_error__contains": group.search} if group.search else {})
                ),
            )
            for group in figures.failures
        ],
        "can_view_accounts": user.has_perm("amocrm.view_account"),
        "can_view_flows": user.has_perm("sync.view_flow"),
    }


def _amount(value: float) -> str:
    # One decimal at most, none when it is zero: "20 s", not "20,0 s" (nor "19,98 s").
    return floatformat(round(value, 1), -1)


@register.filter
def sync_duration(value: timedelta | None) -> str:
    """A duration in the largest fitting unit, numbers in the current locale's format."""
    if value is None:
        return "—"
    seconds = abs(value.total_seconds())
    if seconds < 1:
        return gettext("%(value)s ms") % {"value": floatformat(seconds * 1000, 0)}
    if seconds < 60:
        return gettext("%(value)s s") % {"value": _amount(seconds)}
    if seconds < 3600:
        return gettext("%(value)s min") % {"value": _amount(seconds / 60)}
    if seconds < 2 * 86400:
        return gettext("%(value)s h") % {"value": _amount(seconds / 3600)}
    return gettext("%(value)s d") % {"value": _amount(seconds / 86400)}


@register.filter
def sync_field_type(value: str) -> str:
    """An AmoCRM field type in the words of AmoCRM's interface ("date and time")."""
    return field_type_name(value)


@register.filter
def sync_window(value: timedelta) -> str:
    """A look-back window: "24 hours", "7 days"."""
    if value.total_seconds() % 86400 == 0:
        days = value.days
        return ngettext("%(count)s day", "%(count)s days", days) % {"count": days}
    hours = round(value.total_seconds() / 3600)
    return ngettext("%(count)s hour", "%(count)s hours", hours) % {"count": hours}
