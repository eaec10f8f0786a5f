"""Admin for flows, their field and stage mappings, and mock lead aliases."""

from django import forms
from django.contrib import admin

from integrations.amocrm.models import CustomField
from integrations.sync.admin.forms import FieldMappingForm, pipeline_field, status_field
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import FieldMapping, Flow, FlowStatusMapping, LeadAlias


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
            pipeline = pipeline_field(obj.account_id, label="AmoCRM pipeline")
            status = status_field(obj.account_id, label="AmoCRM stage")
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
            pipeline = pipeline_field(
                obj.account_id, label="Mock pipeline", required=False, blank="(the main one)"
            )
            status = status_field(
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


@admin.register(LeadAlias)
class LeadAliasAdmin(admin.ModelAdmin):
    list_display = ["rdesk_lead_id", "amocrm_lead_id", "account", "created_at"]
    list_filter = ["account"]
    search_fields = ["=rdesk_lead_id", "=amocrm_lead_id"]
