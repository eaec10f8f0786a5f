"""The read-only admin of batch calls: one AmoCRM request that carried several events.

Each event's own part (the item sent for it, its share of the answer) is on its attempt;
the batch call keeps the answer whole. An answer about many guests may repeat any of
their values, so it is shown only to people allowed to see personal data.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.sync.admin import events_display as display
from integrations.sync.admin.events import ReadOnlyAdmin
from integrations.sync.models import BatchCall


@admin.register(BatchCall)
class BatchCallAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "account",
        "request_method",
        "request_url",
        "item_count",
        "response_badge",
        "duration_ms",
        "error_class",
    ]
    list_filter = ["account", "response_status", "error_class", "started_at"]
    date_hierarchy = "started_at"
    list_select_related = ["account"]
    show_full_result_count = False
    fields = [
        "account",
        "started_at",
        "duration_ms",
        "request_method",
        "request_url",
        "item_count",
        "events_carried",
        "response_badge",
        "response_whole",
        "error_class",
    ]
    readonly_fields = fields

    @admin.display(description=_("response status"), ordering="response_status")
    def response_badge(self, obj):
        return display.http_badge(obj.response_status)

    @admin.display(description=_("events carried"))
    def events_carried(self, obj):
        attempts = obj.attempts.select_related("event").order_by("event_id")
        return format_html_join(
            ", ",
            '<a href="{}">#{}</a>',
            (
                (reverse("admin:sync_inboundevent_change", args=[a.event_id]), a.event_id)
                for a in attempts
            ),
        )

    @admin.display(description=_("response body"))
    def response_whole(self, obj):
        if not getattr(obj, "shows_personal_data", False):
            return gettext(
                "Hidden: an answer about several guests may hold their personal data. Each "
                "event's attempt shows its own part of it, masked."
            )
        return display.pretty(obj.response_body)

    def get_object(self, request, object_id, from_field=None):
        call = super().get_object(request, object_id, from_field)
        if call is not None:
            call.shows_personal_data = display.may_see_personal_data(request.user)
        return call
