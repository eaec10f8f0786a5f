"""Admin for flows and their mappings, and the read-only audit trail with replay."""

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from integrations.amocrm.models import CustomField, Pipeline, Status
from integrations.sync.delivery import events_replay
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import (
    DeliveryAttempt,
    FieldMapping,
    Flow,
    FlowStatusMapping,
    InboundEvent,
    LeadAlias,
)


def _pretty(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", value)


class FieldMappingForm(forms.ModelForm):
    class Meta:
        model = FieldMapping
        fields = ["source", "field_id", "field_type", "enabled"]


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        fields = formset.form.base_fields
        if obj is not None:
            # Admins pick the value by its label and the field by its name in AmoCRM.
            sources = FLOW_KINDS[obj.kind].sources
            fields["source"] = forms.ChoiceField(
                choices=[
                    ("", "---------"),
                    *((name, f"{label} ({name})") for name, label in sources.items()),
                ]
            )
            catalogue = CustomField.objects.filter(account=obj.account_id).order_by("name")
            if obj.account_id and catalogue.exists():
                fields["field_id"] = forms.TypedChoiceField(
                    label="AmoCRM field",
                    coerce=int,
                    choices=[("", "---------")]
                    + [(f.field_id, str(f)) for f in catalogue if not f.is_computed],
                )
        return formset


def _pipeline_field(account_id, *, label: str, required: bool = True, blank: str = "---------"):
    """A select of the account's pipelines by name, or None when none were fetched."""
    pipelines = Pipeline.objects.filter(account=account_id)
    if account_id is None or not pipelines.exists():
        return None
    return forms.TypedChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[("", blank), *((p.pipeline_id, str(p)) for p in pipelines)],
    )


def _status_field(account_id, *, label: str, required: bool = True, blank: str = "---------"):
    """A select of the account's stages, grouped by pipeline; None when none were fetched."""
    statuses = Status.objects.filter(pipeline__account=account_id).select_related("pipeline")
    if account_id is None or not statuses.exists():
        return None
    groups: dict[str, list] = {}
    for status in statuses:
        groups.setdefault(str(status.pipeline), []).append(
            (status.status_id, f"{status.name} ({status.status_id})")
        )
    return forms.TypedChoiceField(
        label=label,
        coerce=int,
        required=required,
        empty_value=None,
        choices=[("", blank), *groups.items()],
    )


class FlowStatusMappingInline(admin.TabularInline):
    """Booking status -> pipeline stage; chosen by name once the catalogue is fetched."""

    model = FlowStatusMapping
    extra = 0
    fields = ["booking_status", "pipeline_id", "status_id"]
    verbose_name = "pipeline stage for a booking status"
    verbose_name_plural = (
        "Pipeline stages by booking status (statuses not listed leave the lead's stage alone)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        fields = formset.form.base_fields
        if obj is not None:
            pipeline = _pipeline_field(obj.account_id, label="AmoCRM pipeline")
            status = _status_field(obj.account_id, label="AmoCRM stage")
            if pipeline is not None and status is not None:
                fields["pipeline_id"], fields["status_id"] = pipeline, status
        return formset


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "endpoint_path", "account", "enabled", "mock_lead_id"]
    list_filter = ["kind", "enabled", "mock_lead_id", "account"]
    search_fields = ["name", "endpoint_path"]
    inlines = [FieldMappingInline, FlowStatusMappingInline]
    fieldsets = [
        (None, {"fields": ["name", "kind", "endpoint_path", "account", "enabled"]}),
        ("Lead", {"fields": ["price_source"]}),
        (
            "Mock lead id mode",
            {
                "fields": ["mock_lead_id", "mock_pipeline_id", "mock_status_id"],
                "description": "For RDESK lead id N, update the AmoCRM lead named ID_N, "
                "created in this pipeline and stage when missing. Lets a deployment point at "
                "any AmoCRM account, e.g. a test one.",
            },
        ),
    ]

    def get_inlines(self, request, obj):
        if obj is not None and FLOW_KINDS[obj.kind].status_source is None:
            # Medical-centre cards have no booking status to move the lead by.
            return [FieldMappingInline]
        return self.inlines

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            pipeline = _pipeline_field(
                obj.account_id, label="Mock pipeline", required=False, blank="(the main one)"
            )
            status = _status_field(
                obj.account_id, label="Mock stage", required=False, blank="(its first stage)"
            )
            if pipeline is not None and status is not None:
                form.base_fields["mock_pipeline_id"] = pipeline
                form.base_fields["mock_status_id"] = status
        return form


@admin.register(FieldMapping)
class FieldMappingAdmin(admin.ModelAdmin):
    list_display = ["flow", "source", "field_id", "field_type", "enabled"]
    list_filter = ["flow", "field_type", "enabled"]
    search_fields = ["source", "field_id"]


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


@admin.register(LeadAlias)
class LeadAliasAdmin(admin.ModelAdmin):
    list_display = ["rdesk_lead_id", "amocrm_lead_id", "account", "created_at"]
    list_filter = ["account"]
    search_fields = ["=rdesk_lead_id", "=amocrm_lead_id"]
