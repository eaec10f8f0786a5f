"""Admin for flows, their field and stage mappings, and mock lead aliases."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from hub.admin_actions import HubModelAdmin
from integrations.sync.admin.flows_security import FlowIntakeSecurity
from integrations.sync.admin.forms import (
    FieldMappingForm,
    FieldMappingFormSet,
    FlowStatusMappingForm,
    FlowStatusMappingFormSet,
    FlowStepForm,
    pipeline_field,
    status_field,
)
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.mapping_checks import (
    catalogue_fields,
    catalogue_missing_message,
    mapping_problem,
    mappings_missing_field,
    mappings_with_catalogue_state,
)
from integrations.sync.models import FieldMapping, Flow, FlowStatusMapping, LeadAlias


def _mapping_words(mapping: FieldMapping) -> str:
    label = FLOW_KINDS[mapping.flow.kind].sources.get(mapping.source, mapping.source)
    return gettext("%(value)s (%(source)s) → field %(id)s") % {
        "value": str(label),
        "source": mapping.source,
        "id": mapping.field_id,
    }


def _warning(text: str) -> str:
    return format_html('<strong style="color: var(--error-fg)">⚠ {}</strong>', text)


def _check_cell(mapping: FieldMapping, fields) -> str:
    """A mapping's row mark: what is wrong with it, judged by its account's catalogue."""
    if fields is None:
        return gettext("(catalogue not fetched)")
    problem = mapping_problem(mapping, fields=fields)
    return _warning(problem) if problem else "✓"


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    formset = FieldMappingFormSet
    extra = 0
    fields = ["source", "field_id", "field_type", "enabled", "catalogue_check"]
    readonly_fields = ["field_type", "catalogue_check"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One catalogue read per page, not per row; an inline lives for one request.
        self._catalogues: dict = {}

    @admin.display(description=_("check"))
    def catalogue_check(self, obj):
        if obj is None or obj.pk is None:
            return ""
        account_id = obj.flow.account_id
        if account_id not in self._catalogues:
            self._catalogues[account_id] = catalogue_fields(account_id)
        return _check_cell(obj, self._catalogues[account_id])


class FlowStatusMappingInline(admin.TabularInline):
    """Booking status -> pipeline stage; chosen by name once the catalogue is fetched."""

    model = FlowStatusMapping
    form = FlowStatusMappingForm
    formset = FlowStatusMappingFormSet
    extra = 0
    fields = ["booking_status", "pipeline_id", "status_id"]
    verbose_name = _("pipeline stage for a booking status")
    verbose_name_plural = _(
        "Pipeline stages by booking status (statuses not listed leave the lead's stage alone)"
    )


@admin.register(Flow)
class FlowAdmin(FlowIntakeSecurity, HubModelAdmin):
    list_display = [
        "name",
        "kind",
        "endpoint_path",
        "account",
        "enabled",
        "mock_lead_id",
        "intake_security",
    ]
    list_filter = ["kind", "enabled", "mock_lead_id", "account"]
    search_fields = ["name", "endpoint_path"]
    inlines = [FieldMappingInline, FlowStatusMappingInline]
    fieldsets = [
        (None, {"fields": ["name", "kind", "endpoint_path", "account", "enabled"]}),
        (_("Lead"), {"fields": ["price_source"]}),
        (
            _("Mock lead id mode"),
            {
                "fields": ["mock_lead_id", "mock_pipeline_id", "mock_status_id"],
                "description": _(
                    "For RDESK lead id N, update the AmoCRM lead named ID_N, created in this "
                    "pipeline and stage when missing. Lets a deployment point at any AmoCRM "
                    "account, e.g. a test one."
                ),
            },
        ),
        FlowIntakeSecurity.intake_fieldset,
    ]
    readonly_fields = FlowIntakeSecurity.intake_readonly_fields

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return self.fieldsets
        (name, options), *rest = self.fieldsets
        description = _(
            "Save the flow first: its field mappings and pipeline stages are then chosen by "
            "name from its account's fetched catalogue."
        )
        return [(name, {**options, "description": description}), *rest]

    def get_inlines(self, request, obj):
        if obj is None:
            # Nothing to offer before the flow has a kind and an account.
            return []
        if FLOW_KINDS[obj.kind].status_source is None:
            # Medical-centre cards have no booking status to move the lead by.
            return [FieldMappingInline]
        return self.inlines

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            pipeline = pipeline_field(
                obj.account_id,
                label=gettext("Mock pipeline"),
                required=False,
                blank=gettext("(the main one)"),
                current=obj.mock_pipeline_id,
            )
            status = status_field(
                obj.account_id,
                label=gettext("Mock stage"),
                required=False,
                blank=gettext("(its first stage)"),
                current=obj.mock_status_id,
            )
            if pipeline is not None and status is not None:
                form.base_fields["mock_pipeline_id"] = pipeline
                form.base_fields["mock_status_id"] = status
        return form

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            flow = self.get_object(request, object_id)
            if flow is not None:
                self._mapping_warnings(request, flow)
        return super().change_view(request, object_id, form_url, extra_context)

    def _mapping_warnings(self, request, flow: Flow) -> None:
        """Say on the flow page what its mappings need before they can be trusted."""
        if flow.account_id is None:
            messages.warning(
                request, gettext("The flow has no AmoCRM account: it delivers nothing.")
            )
            return
        fields = catalogue_fields(flow.account_id)
        if fields is None:
            messages.warning(request, catalogue_missing_message(flow.account))
            return
        missing = list(mappings_missing_field(flow_id=flow.pk))
        if missing:
            messages.warning(
                request,
                gettext(
                    "These mappings write to fields that are no longer in AmoCRM (the last "
                    "catalogue refresh did not find them): %(mappings)s. AmoCRM refuses "
                    "updates that carry them: choose another field or delete them."
                )
                % {"mappings": "; ".join(_mapping_words(m) for m in missing)},
            )
        others = [
            m
            for m in flow.mappings.exclude(pk__in=[m.pk for m in missing])
            if mapping_problem(m, fields=fields)
        ]
        if others:
            messages.warning(
                request,
                ngettext(
                    "%(count)s mapping does not fit its AmoCRM field: see the “check” "
                    "column below.",
                    "%(count)s mappings do not fit their AmoCRM fields: see the “check” "
                    "column below.",
                    len(others),
                )
                % {"count": len(others)},
            )


class MissingFieldFilter(admin.SimpleListFilter):
    title = _("field in AmoCRM")
    parameter_name = "in_amocrm"

    def lookups(self, request, model_admin):
        return [
            ("yes", _("In the catalogue")),
            ("no", _("Missing from AmoCRM")),
            ("unknown", _("Catalogue not fetched")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(has_catalogue=True, field_exists=True)
        if self.value() == "no":
            return queryset.filter(has_catalogue=True, field_exists=False)
        if self.value() == "unknown":
            return queryset.filter(has_catalogue=False)
        return queryset


@admin.register(FieldMapping)
class FieldMappingAdmin(HubModelAdmin):
    form = FieldMappingForm
    list_display = ["flow", "source", "field_id_text", "amocrm_field", "field_type", "enabled"]
    list_filter = ["flow", "field_type", "enabled", MissingFieldFilter]
    list_select_related = ["flow"]
    search_fields = ["source", "field_id"]
    fields = ["flow", "source", "field_id", "field_type", "enabled", "catalogue_check"]
    readonly_fields = ["field_type", "catalogue_check"]

    def get_queryset(self, request):
        return mappings_with_catalogue_state(super().get_queryset(request))

    @admin.display(description=_("check"))
    def catalogue_check(self, obj):
        if obj is None or obj.pk is None:
            return ""
        return _check_cell(obj, catalogue_fields(obj.flow.account_id))

    @admin.display(description=_("AmoCRM field id"), ordering="field_id")
    def field_id_text(self, obj):
        # An id, not an amount: no digit grouping.
        return str(obj.field_id)

    @admin.display(description=_("AmoCRM field"))
    def amocrm_field(self, obj):
        if not obj.has_catalogue:
            return gettext("(catalogue not fetched)")
        if obj.field_name is None:
            return _warning(gettext("missing from AmoCRM"))
        return obj.field_name

    def _asks_flow(self, request, obj) -> bool:
        """Adding a mapping starts by choosing its flow, unless the request names one."""
        return obj is None and "flow" not in request.GET and "source" not in request.POST

    def get_fields(self, request, obj=None):
        if self._asks_flow(request, obj):
            return ["flow"]
        # Nothing to check before the mapping exists.
        if obj is None:
            return [name for name in self.fields if name != "catalogue_check"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if self._asks_flow(request, obj) else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self._asks_flow(request, obj):
            kwargs["form"] = FlowStepForm
        return super().get_form(request, obj, change=change, **kwargs)

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "POST" and self._asks_flow(request, None):
            if not self.has_add_permission(request):
                raise PermissionDenied
            step = FlowStepForm(request.POST)
            step.is_valid()
            flow = step.cleaned_data.get("flow")
            if flow is not None:
                query = request.GET.copy()
                query["flow"] = str(flow.pk)
                return redirect(f"{request.path}?{query.urlencode()}")
        return super().add_view(request, form_url, extra_context)


@admin.register(LeadAlias)
class LeadAliasAdmin(HubModelAdmin):
    list_display = ["rdesk_lead_id", "amocrm_lead_id", "account", "created_at"]
    list_filter = ["account"]
    search_fields = ["=rdesk_lead_id", "=amocrm_lead_id"]
