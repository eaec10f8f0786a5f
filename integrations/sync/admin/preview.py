"""Admin pages showing what a delivery would send: for a pasted payload, or for an event.

Nothing is sent and nothing is stored, except the record that someone saw an event's
personal data unmasked. Both pages need ``sync.preview_event``; an event's data is
masked for users without ``sync.view_personal_data``. A pasted payload is the user's
own text: it is shown as it is and forgotten.

The pages join the admin site's URL namespace (``admin:sync_flow_preview``,
``admin:sync_inboundevent_preview``) through ``preview_urls``, which hub/urls.py puts
ahead of the site's own patterns: ``admin.site.urls`` is only the triple
``(get_urls(), "admin", name)``, so the URLconf builds that triple with these pages
first. First matters: each ModelAdmin ends with a catch-all ``<path:object_id>/`` that
would read ``5/preview/`` as an object id. No ModelAdmin is subclassed or changed, and
``admin_site.admin_view`` gives the pages the admin's login check, CSRF and no-cache.
"""

import json
from datetime import date, datetime
from decimal import Decimal

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.settings import api_settings

from integrations.amocrm.models import CustomField
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.masking import Masker
from integrations.sync.models import Flow, InboundEvent, PersonalDataAccess
from integrations.sync.preview import Preview, preview_build

PREVIEW_PERMISSION = "sync.preview_event"
RECENT_EVENTS = 10
NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


def preview_urls(admin_site) -> list:
    """The preview pages, to put ahead of ``admin_site.get_urls()`` in its namespace."""
    return [
        path(
            "sync/flow/<int:flow_id>/preview/",
            admin_site.admin_view(flow_preview),
            {"admin_site": admin_site},
            name="sync_flow_preview",
        ),
        path(
            "sync/inboundevent/<int:event_id>/preview/",
            admin_site.admin_view(event_preview),
            {"admin_site": admin_site},
            name="sync_inboundevent_preview",
        ),
    ]


class PastedPayloadForm(forms.Form):
    payload = forms.CharField(
        label=_("Payload (JSON)"),
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 18, "class": "vLargeTextField", "spellcheck": "false"}
        ),
        help_text=_("One item as RDESK posts it: a JSON object, or an array holding one object."),
    )

    def clean_payload(self):
        text = self.cleaned_data["payload"]
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValidationError(
                _("This is not valid JSON: %(error)s."), code="json", params={"error": error}
            ) from error
        if isinstance(value, list):
            if len(value) != 1:
                raise ValidationError(
                    _("Paste one item: this array holds %(count)d."),
                    code="count",
                    params={"count": len(value)},
                )
            value = value[0]
        if not isinstance(value, dict):
            raise ValidationError(
                _("Paste a JSON object (one RDESK item), or an array holding one object."),
                code="shape",
            )
        return value


class EventPickForm(forms.Form):
    """Finds an event of the flow by the hub's event number or by its RDESK id."""

    event_id = forms.IntegerField(label=_("Event number"), required=False, min_value=1)
    rdesk_id = forms.CharField(label=_("RDESK id"), required=False, max_length=64)

    def __init__(self, *args, flow: Flow, **kwargs):
        super().__init__(*args, **kwargs)
        self.flow = flow
        self.event = None

    def clean(self):
        data = super().clean()
        event_id, rdesk_id = data.get("event_id"), (data.get("rdesk_id") or "").strip()
        if self.errors:
            return data
        if not event_id and not rdesk_id:
            raise ValidationError(_("Give an event number or an RDESK id."))
        events = self.flow.events.order_by("-received_at", "-id")
        self.event = (
            events.filter(pk=event_id).first()
            if event_id
            else events.filter(rdesk_id=rdesk_id).first()
        )
        if self.event is None:
            raise ValidationError(_("This flow has no such event."))
        return data


def _require_preview_right(request) -> None:
    if not request.user.has_perm(PREVIEW_PERMISSION):
        raise PermissionDenied


@require_http_methods(["GET", "POST"])
def flow_preview(request, flow_id: int, admin_site):
    """A flow's preview: paste a payload (POST), or pick one of its events (GET)."""
    _require_preview_right(request)
    flow = get_object_or_404(Flow.objects.select_related("account"), pk=flow_id)
    picking = "event_id" in request.GET or "rdesk_id" in request.GET
    pick_form = EventPickForm(request.GET if picking else None, flow=flow)
    if picking and pick_form.is_valid():
        return redirect("admin:sync_inboundevent_preview", event_id=pick_form.event.pk)
    form = PastedPayloadForm(request.POST if request.method == "POST" else None)
    preview = None
    if form.is_bound and form.is_valid():
        preview = preview_build(flow=flow, payload=form.cleaned_data["payload"])
    context = {
        "title": gettext("Preview: %(flow)s") % {"flow": flow},
        "flow": flow,
        "form": form,
        "pick_form": pick_form,
        "recent_events": flow.events.order_by("-received_at", "-id")[:RECENT_EVENTS],
        **_preview_context(preview, Masker(None, enabled=False)),
    }
    return _render(request, admin_site, context, opts=Flow._meta)


@require_GET
def event_preview(request, event_id: int, admin_site):
    """An event's stored payload through its flow's current mappings."""
    _require_preview_right(request)
    event = get_object_or_404(InboundEvent.objects.select_related("flow__account"), pk=event_id)
    masker = Masker.for_raw(request.user, event.raw_text, event.payload)
    preview = preview_build(flow=event.flow, payload=event.payload, event=event)
    if not masker.enabled:
        PersonalDataAccess.objects.create(
            event=event, user=request.user, kind=PersonalDataAccess.Kind.PREVIEW
        )
    context = {
        "title": gettext("Preview of event #%(id)s") % {"id": event.pk},
        "flow": event.flow,
        "event": event,
        "payload_shown": _pretty(masker.payload()),
        **_preview_context(preview, masker),
    }
    return _render(request, admin_site, context, opts=InboundEvent._meta)


def _render(request, admin_site, context: dict, *, opts) -> TemplateResponse:
    context = {**admin_site.each_context(request), "opts": opts, **context}
    return TemplateResponse(request, "admin/sync/preview.html", context)


def _preview_context(preview: Preview | None, masker: Masker) -> dict:
    """What the templates show of a preview, masked where the masker is on."""
    if preview is None:
        return {"preview": None}
    return {
        "preview": preview,
        "masked": masker.enabled,
        "problem_reason": masker.text(preview.problem.reason) if preview.problem else "",
        "error_rows": [
            (path, masker.text(message)) for path, message in _error_rows(preview.errors)
        ],
        "requests_shown": [
            {"request": request, "body": _pretty(masker.json(request.body))}
            for request in preview.requests
        ],
        "values_rows": _value_rows(preview, masker),
        "diff_rows": [
            {
                "change": change,
                "old": masker.text(_shown(change.old)),
                "new": masker.text(_shown(change.new)),
            }
            for change in (preview.diff.changes if preview.diff else [])
        ],
    }


def _value_rows(preview: Preview, masker: Masker) -> list[dict]:
    """The named values with their labels and where each goes in AmoCRM."""
    if preview.values is None:
        return []
    flow = preview.flow
    sources = FLOW_KINDS[flow.kind].sources
    names = dict(
        CustomField.objects.filter(account_id=flow.account_id).values_list("field_id", "name")
    )
    targets: dict[str, list[str]] = {}
    if flow.price_source:
        targets.setdefault(flow.price_source, []).append(gettext("Price"))
    for mapping in flow.mappings.filter(enabled=True):
        name = names.get(mapping.field_id)
        label = (
            f"{name} ({mapping.field_id})"
            if name
            else gettext("Field %(id)s") % {"id": mapping.field_id}
        )
        targets.setdefault(mapping.source, []).append(label)
    return [
        {
            "name": name,
            "label": str(sources[name]) if name in sources else name,
            "value": masker.text(_shown(value)),
            "targets": targets.get(name, []),
        }
        for name, value in preview.values.items()
    ]


def _error_rows(errors, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The serializer's errors as (``billData.1.billSum``, message) pairs."""
    if isinstance(errors, dict):
        return [
            row
            for key, value in errors.items()
            for row in _error_rows(value, path if key == NON_FIELD else (*path, str(key)))
        ]
    if isinstance(errors, list):
        if all(isinstance(item, str) for item in errors):
            return [(".".join(path), str(item)) for item in errors]
        return [row for i, item in enumerate(errors) for row in _error_rows(item, (*path, str(i)))]
    return [(".".join(path), str(errors))] if errors else []


def _shown(value) -> str:
    """A named value or a field's values as one line of text; empty for nothing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else str(value)
    if isinstance(value, (date, Decimal, int, float, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, dict) and set(v) == {"value"} for v in value):
        # A custom field's values: [{"value": ...}, ...]
        return ", ".join(str(v["value"]) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _pretty(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
