"""The read-only audit trail: inbound events and their delivery attempts, replay and export.

Personal data is masked on every page for users without ``sync.view_personal_data``;
those with it see it unmasked, and each event page they open is recorded.
"""

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from hub.admin_actions import HubModelAdmin
from integrations.sync.admin import events_display as display
from integrations.sync.admin.events_operations import (
    EXPORT_PERMISSION,
    REPLAY_PERMISSION,
    EventOperations,
)
from integrations.sync.admin.events_search import events_personal_search
from integrations.sync.masking import Masker
from integrations.sync.models import DeliveryAttempt, InboundEvent, PersonalDataAccess
from integrations.sync.retention import pruned_count, retention_rules, rule_for

PREVIEW_PERMISSION = "sync.preview_event"


class ReadOnlyAdmin(HubModelAdmin):
    """The audit trail is written by the pipeline only: nobody adds, edits or deletes."""

    class Media:
        css = {"all": ["sync/events.css"]}

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def access_record(request, event_id: int) -> None:
    """Records that the user saw the event's personal data unmasked on a page."""
    PersonalDataAccess.objects.create(
        event_id=event_id, user=request.user, kind=PersonalDataAccess.Kind.VIEW
    )


class EventChangeList(ChangeList):
    """The events list: one query for the page, one for the AmoCRM leads of mock flows."""

    def get_queryset(self, request, exclude_parameters=None):
        # The raw body and headers are read on the event page only.
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.defer("raw_body", "headers")

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        masked = not display.may_see_personal_data(request.user)
        lead_ids = display.amocrm_lead_ids(self.result_list)
        for event in self.result_list:
            event.masker = Masker(event.payload, enabled=masked)
            event.amocrm_lead_id = lead_ids.get(event.pk)

    @property
    def filter_query_string(self) -> str:
        """The list's filters and search as a query string, for export and replay."""
        return self.get_query_string(remove=[PAGE_VAR])


@admin.register(InboundEvent)
class InboundEventAdmin(EventOperations, ReadOnlyAdmin):
    list_display = [
        "id",
        "status_badge",
        "received_at",
        "delivered_at",
        "attempts",
        "flow",
        "rdesk_id",
        "lead",
        "client",
        "error",
    ]
    list_filter = ["status", "flow", ("received_at", admin.DateFieldListFilter)]
    # Gives the list its search box; get_search_results does the matching.
    search_fields = ["=lead_id", "=rdesk_id", "=body_hash"]
    date_hierarchy = "received_at"
    list_select_related = ["flow__account"]
    # A count of the whole table on every page would cost more than the page itself.
    show_full_result_count = False
    actions = ["replay", "revalidate"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "status_badge",
                    "flow",
                    "received_at",
                    "delivered_at",
                    "attempts",
                    "next_attempt_at",
                    "replayed_at",
                    "rdesk_id",
                    "lead",
                    "last_error_text",
                ]
            },
        ),
        (
            _("As received"),
            {
                "classes": ["collapse"],
                "fields": [
                    "remote_addr",
                    "item_index",
                    "body_hash",
                    "headers_pretty",
                    "raw_body_text",
                ],
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("flow__account")

    def get_object(self, request, object_id, from_field=None):
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            event.masker = display.event_masker(request.user, event)
        return event

    def get_changelist(self, request, **kwargs):
        return EventChangeList

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        changelist.search_help_text = self._search_help(request)
        return changelist

    def _search_help(self, request) -> str:
        if display.may_see_personal_data(request.user):
            return gettext(
                "Search by RDESK id, lead id or body hash (whole values), or by a guest's or "
                "the client's name or phone (e.g. +7 912 312-31-23)."
            )
        return gettext(
            "Search by RDESK id, lead id or body hash (whole values). Searching by name or "
            "phone needs the right to see personal data."
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Whole values, compared exactly so the indexes serve them (Django's "=" would
        # compare upper-cased copies and read the whole table).
        results = queryset.filter(Q(rdesk_id=term) | Q(lead_id=term) | Q(body_hash=term.lower()))
        if display.may_see_personal_data(request.user):
            personal = events_personal_search(queryset, term)
            if personal is not None:
                results = results | personal
        return results, False

    # --- columns and fields ---------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return display.status_badge(obj.status)

    @admin.display(description=_("lead"), ordering="lead_id")
    def lead(self, obj):
        if not hasattr(obj, "amocrm_lead_id"):
            obj.amocrm_lead_id = display.amocrm_lead_ids([obj]).get(obj.pk)
        return display.lead_link(obj, obj.amocrm_lead_id)

    @admin.display(description=_("client"))
    def client(self, obj):
        masker = display.masker_of(obj)
        name, phone = display.client_of(obj.payload, masked=masker.enabled)
        return format_html("{}<br>{}", name, phone) if phone else name

    @admin.display(description=_("error"))
    def error(self, obj):
        if not obj.last_error:
            return ""
        text = display.masker_of(obj).text(obj.last_error)
        return format_html('<div class="sync-error">{}</div>', text)

    @admin.display(description=_("last error"))
    def last_error_text(self, obj):
        return display.pretty(display.masker_of(obj).text(obj.last_error)) if obj.last_error else ""

    @admin.display(description=_("raw body"))
    def raw_body_text(self, obj):
        return display.pretty(display.masker_of(obj).raw(obj.raw_text))

    @admin.display(description=_("headers"))
    def headers_pretty(self, obj):
        return display.pretty(display.json_text(display.masker_of(obj).json(obj.headers)))

    # --- the event page ---------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._event_context(request, obj))
            if request.method == "GET" and not obj.masker.enabled:
                access_record(request, obj.pk)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _event_context(self, request, event) -> dict:
        masker = event.masker
        preview_url = None
        # A pruned event has nothing left to preview or send again.
        if request.user.has_perm(PREVIEW_PERMISSION) and event.pruned_at is None:
            try:
                preview_url = reverse("admin:sync_inboundevent_preview", args=[event.pk])
            except NoReverseMatch:
                preview_url = None
        return {
            "masking_notice": display.MASKED_NOTICE if masker.enabled else display.UNMASKED_NOTICE,
            "data_masked": masker.enabled,
            "payload_text": display.json_text(masker.payload()),
            "named_values": display.named_values(event, masker),
            "history": display.history(event, masker),
            "replay_url": reverse("admin:sync_inboundevent_replay", args=[event.pk])
            if request.user.has_perm(REPLAY_PERMISSION) and event.pruned_at is None
            else None,
            "preview_url": preview_url,
            "pruned_notice": _pruned_notice(event),
        }

    def changelist_view(self, request, extra_context=None):
        masked = not display.may_see_personal_data(request.user)
        context = {
            "masking_notice": display.MASKED_NOTICE if masked else "",
            "can_replay": self.has_replay_permission(request),
            "can_export": request.user.has_perm(EXPORT_PERMISSION),
            "retention_rules": [
                {
                    "label": rule.label,
                    "days": rule.days,
                    "cutoff": rule.cutoff,
                    "due": sum(rule.due_counts().values()),
                }
                for rule in retention_rules()
            ],
            "retention_pruned": pruned_count(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)


def _pruned_notice(event: InboundEvent) -> str:
    if event.pruned_at is None:
        return ""
    rule = rule_for(event.status)
    when = formats.localize(timezone.localtime(event.pruned_at))
    if rule is None:
        return gettext(
            "Pruned on %(date)s under the retention policy: its personal data was removed."
        ) % {"date": when}
    return gettext(
        "Pruned on %(date)s under the retention policy (%(rule)s: %(days)d days): its "
        "personal data was removed; ids, amounts, dates, statuses and AmoCRM's answers' "
        "status codes are kept."
    ) % {"date": when, "rule": str(rule.label).lower(), "days": rule.days}


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "event",
        "request_method",
        "request_url",
        "response_badge",
        "duration_ms",
        "error_class",
    ]
    list_filter = ["response_status", "error_class", "event__flow", "started_at"]
    search_fields = ["=event__lead_id", "=event__rdesk_id"]
    date_hierarchy = "started_at"
    list_select_related = ["event__flow"]
    show_full_result_count = False
    fields = [
        "event",
        "started_at",
        "duration_ms",
        "request_method",
        "request_url",
        "request_pretty",
        "response_badge",
        "response_pretty",
        "error_class",
        "error_detail_text",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("event__flow")
        # The list shows no body; the event's raw body is read on the attempt page only.
        return queryset.defer("event__raw_body", "event__headers", "event__payload")

    def get_object(self, request, object_id, from_field=None):
        queryset = super().get_queryset(request).select_related("event__flow")
        attempt = queryset.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if attempt is not None:
            attempt.masker = display.event_masker(request.user, attempt.event)
        return attempt

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["masking_notice"] = (
                display.MASKED_NOTICE if obj.masker.enabled else display.UNMASKED_NOTICE
            )
            context["data_masked"] = obj.masker.enabled
            if request.method == "GET" and not obj.masker.enabled:
                access_record(request, obj.event_id)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("response status"), ordering="response_status")
    def response_badge(self, obj):
        return display.http_badge(obj.response_status)

    @admin.display(description=_("request body"))
    def request_pretty(self, obj):
        if obj.request_body is None:
            return ""
        return display.pretty(display.json_text(display.masker_of(obj).json(obj.request_body)))

    @admin.display(description=_("response body"))
    def response_pretty(self, obj):
        return display.pretty(display.body_text(display.masker_of(obj), obj.response_body))

    @admin.display(description=_("error detail"))
    def error_detail_text(self, obj):
        if not obj.error_detail:
            return ""
        return display.pretty(display.masker_of(obj).text(obj.error_detail))
