"""Replaying, re-validating and exporting inbound events from the admin.

Each view checks its permission itself: hiding a button is not enough.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import IGNORED_PARAMS
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from integrations.sync.exports import events_export_response
from integrations.sync.models import EventStatus, Replay
from integrations.sync.replay import events_replay
from integrations.sync.revalidation import Revalidation, events_revalidate

REPLAY_PERMISSION = "sync.replay_event"
EXPORT_PERMISSION = "sync.export_events"
PENDING = (EventStatus.RECEIVED, EventStatus.QUEUED)


class EventOperations:
    """Replay (one event, the selected ones, all matching the filter), re-validation of
    rejected events and CSV export."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/replay/",
                wrap(self.replay_view),
                name="sync_inboundevent_replay",
            ),
            path(
                "replay-filtered/",
                wrap(self.replay_filtered_view),
                name="sync_inboundevent_replay_filtered",
            ),
            path("export/", wrap(self.export_view), name="sync_inboundevent_export"),
            *super().get_urls(),
        ]

    def has_replay_permission(self, request):
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.action(description=_("Send the selected events again"), permissions=["replay"])
    def replay(self, request, queryset):
        # ``queryset`` is the whole filtered list when "select all" was chosen.
        count = events_replay(
            event_ids=list(queryset.values_list("pk", flat=True)),
            user=request.user,
            source=Replay.Source.ADMIN_ACTION,
        )
        self.message_user(request, _queued_message(count), messages.SUCCESS)

    @admin.action(description=_("Re-validate rejected events"), permissions=["replay"])
    def revalidate(self, request, queryset):
        # Same right as a replay: both turn stored bodies into deliveries to AmoCRM.
        outcome = events_revalidate(events=queryset)
        for level, text in _revalidated_messages(outcome, selected=queryset.count()):
            self.message_user(request, text, level)

    def replay_view(self, request, object_id):
        """The event page's Replay button: sends this one event again."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:sync_inboundevent_change", args=[object_id]))
        if not self.has_replay_permission(request):
            raise PermissionDenied
        event = self.get_object(request, object_id)
        if event is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        count = events_replay(
            event_ids=[event.pk], user=request.user, source=Replay.Source.EVENT_PAGE
        )
        if count:
            self.message_user(
                request, gettext("The event was queued for delivery again."), messages.SUCCESS
            )
        elif event.pruned_at is not None:
            self.message_user(
                request,
                gettext(
                    "The event was not sent again: it was pruned under the retention policy, "
                    "so what it carried is gone."
                ),
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                gettext(
                    "The event was not sent again: it is %(status)s. Only delivered, skipped "
                    "or failed events can be sent again; pending ones are on their way."
                )
                % {"status": event.get_status_display()},
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:sync_inboundevent_change", args=[event.pk]))

    def replay_filtered_view(self, request):
        """Sends again every event the list's filters select, after a confirmation page."""
        changelist_url = reverse("admin:sync_inboundevent_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(changelist_url)
        if not self.has_replay_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, gettext("The filter is not valid."), messages.ERROR)
            return HttpResponseRedirect(changelist_url)
        events = changelist.get_queryset(request)
        back = changelist_url + changelist.filter_query_string
        if request.POST.get("confirm") == "yes":
            count = events_replay(
                event_ids=list(events.values_list("pk", flat=True)),
                user=request.user,
                source=Replay.Source.ADMIN_ACTION,
            )
            self.message_user(request, _queued_message(count), messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Send all matching events again?"),
            "matching": changelist.result_count,
            "pending": events.filter(status__in=PENDING).count(),
            "filters": _filters_described(changelist),
            "query_string": changelist.filter_query_string,
            "back_url": back,
        }
        return TemplateResponse(request, "admin/sync/inboundevent/replay_filtered.html", context)

    def export_view(self, request):
        """The list's filtered events as CSV, masked unless the user may see personal data."""
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            self.message_user(request, gettext("The filter is not valid."), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:sync_inboundevent_changelist"))
        return events_export_response(events=changelist.get_queryset(request), user=request.user)


def _queued_message(count: int) -> str:
    return ngettext(
        "%(count)d event queued for delivery.", "%(count)d events queued for delivery.", count
    ) % {"count": count}


def _revalidated_messages(outcome: Revalidation, *, selected: int) -> list[tuple[int, str]]:
    accepted, invalid = len(outcome.accepted), len(outcome.still_invalid)
    said = []
    if accepted:
        said.append(
            (
                messages.SUCCESS,
                ngettext(
                    "%(count)d rejected event now passes validation: %(items)d new events "
                    "queued for delivery.",
                    "%(count)d rejected events now pass validation: %(items)d new events "
                    "queued for delivery.",
                    accepted,
                )
                % {"count": accepted, "items": outcome.items},
            )
        )
    if invalid:
        said.append(
            (
                messages.WARNING,
                ngettext(
                    "%(count)d rejected event is still not valid; it stays rejected.",
                    "%(count)d rejected events are still not valid; they stay rejected.",
                    invalid,
                )
                % {"count": invalid},
            )
        )
    left = selected - accepted - invalid
    if left:
        said.append(
            (
                messages.INFO,
                ngettext(
                    "%(count)d selected event was left alone: only events rejected for "
                    "invalid items or too many items, not re-validated before, are judged "
                    "again.",
                    "%(count)d selected events were left alone: only events rejected for "
                    "invalid items or too many items, not re-validated before, are judged "
                    "again.",
                    left,
                )
                % {"count": left},
            )
        )
    return said


def _filters_described(changelist) -> list[str]:
    """The list's active filters and search in words, for the confirmation page."""
    described, covered = [], set()
    for spec in changelist.filter_specs:
        expected = set(spec.expected_parameters())
        covered |= expected
        if not expected & set(changelist.params):
            continue
        for choice in spec.choices(changelist):
            if choice.get("selected"):
                described.append(f"{capfirst(spec.title)}: {choice['display']}")
    # Whatever no filter describes (the date hierarchy's year, month, day) as it came.
    described += [
        f"{key} = {value}"
        for key, value in sorted(changelist.params.items())
        if key not in covered and key not in IGNORED_PARAMS
    ]
    if changelist.query:
        described.append(gettext("search: %(query)s") % {"query": changelist.query})
    return described
