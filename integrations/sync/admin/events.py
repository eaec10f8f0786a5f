"""The read-only audit trail: inbound events and their delivery attempts, with replay."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from integrations.sync.delivery import events_replay
from integrations.sync.models import DeliveryAttempt, InboundEvent


def _pretty(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", value)


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit trail is written by the pipeline only: nobody adds, edits or deletes."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = [
        "started_at",
        "request_method",
        "request_url",
        "response_status",
        "duration_ms",
        "error_class",
        "error_detail",
    ]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "received_at",
        "flow",
        "status",
        "rdesk_id",
        "lead_id",
        "attempts",
        "short_error",
    ]
    list_filter = ["status", "flow", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=lead_id", "=rdesk_id", "=body_hash"]
    date_hierarchy = "received_at"
    list_select_related = ["flow"]
    actions = ["replay"]
    inlines = [DeliveryAttemptInline]
    fields = [
        "flow",
        "status",
        "last_error",
        "received_at",
        "remote_addr",
        "rdesk_id",
        "lead_id",
        "item_index",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "replayed_at",
        "body_hash",
        "payload_pretty",
        "raw_body_text",
        "headers_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.last_error[:120]

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return _pretty(json.dumps(obj.payload, ensure_ascii=False, indent=2))

    @admin.display(description="raw body")
    def raw_body_text(self, obj):
        return _pretty(obj.raw_text)

    @admin.display(description="headers")
    def headers_pretty(self, obj):
        return _pretty(json.dumps(obj.headers, ensure_ascii=False, indent=2))

    def has_replay_permission(self, request):
        return request.user.has_perm("sync.change_inboundevent")

    @admin.action(description="Send the selected events again", permissions=["replay"])
    def replay(self, request, queryset):
        count = events_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) queued for delivery.", messages.SUCCESS)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "event",
        "request_method",
        "request_url",
        "response_status",
        "duration_ms",
        "error_class",
    ]
    list_filter = ["response_status", "error_class", "event__flow", "started_at"]
    search_fields = ["=event__lead_id", "=event__rdesk_id"]
    date_hierarchy = "started_at"
    list_select_related = ["event__flow"]
    fields = [
        "event",
        "started_at",
        "duration_ms",
        "request_method",
        "request_url",
        "request_pretty",
        "response_status",
        "response_body",
        "error_class",
        "error_detail",
    ]
    readonly_fields = fields

    @admin.display(description="request body")
    def request_pretty(self, obj):
        return _pretty(json.dumps(obj.request_body, ensure_ascii=False, indent=2))
