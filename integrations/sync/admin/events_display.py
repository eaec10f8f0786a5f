"""How the audit trail shows an event: masked texts, badges, the AmoCRM lead, the history.

Everything here reads an event that the admin already fetched and returns values for a
template; each shown text goes through the event's ``Masker`` (off for users who may see
personal data).
"""

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.masking import Masker, name_mask, phone_mask
from integrations.sync.models import (
    DeliveryAttempt,
    EventStatus,
    InboundEvent,
    LeadAlias,
    Replay,
)
from integrations.sync.updates import UpdateProblem, lead_update_prepare

PERSONAL_DATA_PERMISSION = "sync.view_personal_data"
MASKED_NOTICE = _("Personal data is masked: you do not have the right to see it.")
UNMASKED_NOTICE = _("Personal data is shown unmasked; your viewing of this event is recorded.")


def may_see_personal_data(user) -> bool:
    return user.has_perm(PERSONAL_DATA_PERMISSION)


def event_masker(user, event: InboundEvent) -> Masker:
    """The masker for one event's texts as ``user`` may see them."""
    return Masker.for_raw(user, event.raw_text, event.payload)


def masker_of(obj) -> Masker:
    """The masker the admin attached to ``obj``; masking on when none was attached."""
    masker = getattr(obj, "masker", None)
    if masker is None:
        event = obj if isinstance(obj, InboundEvent) else obj.event
        masker = Masker(event.payload)
    return masker


def pretty(text: str) -> str:
    return format_html('<pre class="sync-pre">{}</pre>', text)


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def body_text(masker: Masker, body: str) -> str:
    """A body kept as text, pretty when it is JSON; parsing first undoes ``\\u`` escapes."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return masker.text(body)
    return json_text(masker.json(parsed))


def status_badge(status: str) -> str:
    label = EventStatus(status).label if status in EventStatus.values else status
    return format_html('<span class="sync-badge sync-badge--{}">{}</span>', status, label)


def http_badge(status: int | None) -> str:
    if status is None:
        return format_html('<span class="sync-badge sync-badge--none">{}</span>', gettext("none"))
    kind = "ok" if status < 400 else "client" if status < 500 else "server"
    return format_html('<span class="sync-badge sync-badge--http-{}">{}</span>', kind, status)


def client_of(payload, *, masked: bool) -> tuple[str, str]:
    """The client's name and phone from a payload, masked when asked."""
    if not isinstance(payload, dict):
        return "", ""
    name = str(payload.get("name") or "").strip()
    phone = str(payload.get("phone") or "").strip()
    if masked:
        return (name_mask(name) if name else ""), (phone_mask(phone) if phone else "")
    return name, phone


# --- the lead in AmoCRM ------------------------------------------------------------------


def rdesk_lead_number(event: InboundEvent) -> int | None:
    lead_id = event.lead_id.strip()
    return int(lead_id) if lead_id.isdigit() else None


def amocrm_lead_ids(events) -> dict[int, int]:
    """Event id -> AmoCRM lead id, with one query for the mock-mode aliases of them all."""
    found, wanted = {}, {}
    for event in events:
        number = rdesk_lead_number(event)
        if number is None or event.flow.account_id is None:
            continue
        if event.flow.mock_lead_id:
            wanted.setdefault((event.flow.account_id, number), []).append(event.pk)
        else:
            found[event.pk] = number
    if wanted:
        aliases = LeadAlias.objects.filter(
            account_id__in={account for account, _ in wanted},
            rdesk_lead_id__in={number for _, number in wanted},
        ).values_list("account_id", "rdesk_lead_id", "amocrm_lead_id")
        for account_id, number, amocrm_id in aliases:
            for event_id in wanted.get((account_id, number), []):
                found[event_id] = amocrm_id
    return found


def lead_link(event: InboundEvent, amocrm_lead_id: int | None) -> str:
    """The lead id, linked to the lead's page in AmoCRM when the lead is known."""
    if amocrm_lead_id is None or event.flow.account_id is None:
        if event.flow.mock_lead_id and event.lead_id:
            return format_html(
                '{} <span class="sync-muted">({})</span>',
                event.lead_id,
                gettext("no AmoCRM lead yet"),
            )
        return event.lead_id or "—"
    url = f"{event.flow.account.api_base_url}/leads/detail/{amocrm_lead_id}"
    title = gettext("Open lead %(id)s in AmoCRM") % {"id": amocrm_lead_id}
    if str(amocrm_lead_id) == event.lead_id:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener" title="{}">{} ↗</a>',
            url,
            title,
            event.lead_id,
        )
    return format_html(
        '{} → <a href="{}" target="_blank" rel="noopener" title="{}">{} ↗</a>',
        event.lead_id,
        url,
        title,
        amocrm_lead_id,
    )


# --- named values ------------------------------------------------------------------------


@dataclass
class NamedValues:
    """What the event page says about the values a payload produces."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # name, label, value
    problem: str = ""
    note: str = ""


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return formats.localize(timezone.localtime(value))
    if isinstance(value, date | Decimal | int | float):
        return formats.localize(value)
    return str(value)


def named_values(event: InboundEvent, masker: Masker) -> NamedValues:
    """The flow's named values for the event's payload, with the reason when none are sent."""
    flow = event.flow
    if flow.account_id is None:
        return NamedValues(
            note=gettext("This flow has no AmoCRM account, so its events produce no values.")
        )
    if event.pruned_at is not None:
        return NamedValues(
            note=gettext("The event was pruned: without its personal data it has no values.")
        )
    if event.payload is None or event.status == EventStatus.REJECTED:
        return NamedValues(note=gettext("The body was rejected, so it produced no values."))
    result = NamedValues()
    try:
        values = lead_update_prepare(flow=flow, payload=event.payload).values
    except UpdateProblem as problem:
        result.problem = masker.text(problem.reason)
        values = _values_alone(flow, event.payload)
    if values:
        labels = FLOW_KINDS[flow.kind].sources
        shown = masker.json({name: _shown(value) for name, value in values.items()}, by_key=True)
        result.rows = [(name, labels.get(name, ""), shown[name]) for name in values]
    return result


def _values_alone(flow, payload) -> dict | None:
    """The named values of a valid payload that the mappings could not turn into an update."""
    spec = FLOW_KINDS[flow.kind]
    serializer = spec.schema(data=payload)
    if not serializer.is_valid():
        return None
    return spec.values_for(serializer.validated_data, tz=ZoneInfo(flow.account.timezone))


# --- the history -------------------------------------------------------------------------


def attempt_entry(attempt: DeliveryAttempt, number: int, masker: Masker) -> dict:
    return {
        "kind": "attempt",
        "at": attempt.started_at,
        "number": number,
        "method": attempt.request_method,
        "url": masker.text(attempt.request_url),
        "request": json_text(masker.json(attempt.request_body))
        if attempt.request_body is not None
        else "",
        "status": http_badge(attempt.response_status),
        "response": body_text(masker, attempt.response_body),
        "duration_ms": attempt.duration_ms,
        "error_class": attempt.error_class,
        "error": masker.text(attempt.error_detail),
        "admin_url": reverse("admin:sync_deliveryattempt_change", args=[attempt.pk]),
        # A batch call carried this event with others: the request above is this event's
        # item of it, the answer this event's part.
        "batch_url": reverse("admin:sync_batchcall_change", args=[attempt.batch_call_id])
        if attempt.batch_call_id
        else "",
        "batch_items": attempt.batch_call.item_count if attempt.batch_call_id else 0,
    }


def replay_entry(replay: Replay) -> dict:
    return {
        "kind": "replay",
        "at": replay.requested_at,
        "by": replay.requested_by.get_username() if replay.requested_by else "",
        "source": replay.get_source_display(),
        "previous_status": status_badge(replay.previous_status),
        "attempts_before": replay.attempts_before,
    }


def history(event: InboundEvent, masker: Masker) -> list[dict]:
    """Attempts and replays in time order: a replay comes before the attempts it caused."""
    attempts = event.delivery_attempts.select_related("batch_call").order_by("started_at", "id")
    replays = event.replays.select_related("requested_by").order_by("requested_at", "id")
    entries = [
        ((attempt.started_at, 1, attempt.pk), attempt_entry(attempt, number, masker))
        for number, attempt in enumerate(attempts, start=1)
    ]
    entries += [((replay.requested_at, 0, replay.pk), replay_entry(replay)) for replay in replays]
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]
