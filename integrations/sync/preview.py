"""What a delivery would send for a payload, worked out without sending anything.

The admin's preview pages show it: the named values, the requests in the order a
delivery makes them (in mock lead id mode without a known alias: a search and a creation
before the update), or why nothing would be sent. For an event, also what changed since
the last update AmoCRM accepted for it, and whether a newer event for the same lead has
been delivered since (a replay would then be skipped as stale).

Nothing here calls AmoCRM, not even a search: the update is made by
``updates.lead_update_prepare`` and the requests by the client's and ``leads``' own
builders, the same that delivery uses, so the preview is what a delivery sends.
"""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.utils.translation import gettext

from integrations.amocrm import client as amocrm
from integrations.amocrm.models import CustomField
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.leads import (
    SEARCH_PAGE_SIZE,
    mock_lead_body,
    mock_lead_name,
    newer_event_find,
)
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow, InboundEvent, LeadAlias
from integrations.sync.updates import UpdateProblem, lead_update_prepare


class Step:
    """What a planned request is for, in the order a delivery makes them."""

    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"


class Change:
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class PlannedRequest:
    """A request a delivery would send: ``url`` as the client builds it, ``body`` its JSON."""

    step: str
    method: str
    url: str
    body: Any = None


@dataclass(frozen=True)
class LeadTarget:
    """Which AmoCRM lead the update goes to; ``lead_id`` is None until a search finds it."""

    rdesk_lead_id: int
    lead_id: int | None
    mock_name: str = ""  # ID_<n> in mock lead id mode
    alias: LeadAlias | None = None
    # Mock mode without an alias: the lead created when the search finds none.
    new_lead: dict | None = None
    # ... whose pipeline or stage would come from AmoCRM's pipeline list, which a preview
    # does not ask for (the catalogue has not been fetched).
    stage_from_amocrm: bool = False


@dataclass(frozen=True)
class FieldChange:
    """One field of the update, compared with the last update AmoCRM accepted."""

    key: str  # "price", "status_id", ... or "field:<id>" for a custom field
    label: str
    change: str  # a Change value
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class UpdateDiff:
    attempt: DeliveryAttempt  # the last accepted update of the event
    changes: list[FieldChange]
    unchanged: int


@dataclass
class Preview:
    """Everything a preview page shows; ``problem`` set means nothing would be sent."""

    flow: Flow
    event: InboundEvent | None = None
    values: dict | None = None
    requests: list[PlannedRequest] = field(default_factory=list)
    target: LeadTarget | None = None
    problem: UpdateProblem | None = None
    errors: dict | None = None  # the serializer's errors, for an invalid payload
    diff: UpdateDiff | None = None
    never_delivered: bool = False  # an event with no accepted update to compare with
    newer_event: InboundEvent | None = None

    @property
    def update(self) -> PlannedRequest | None:
        return next((r for r in self.requests if r.step == Step.UPDATE), None)


def preview_build(*, flow: Flow, payload, event: InboundEvent | None = None) -> Preview:
    """What delivering ``payload`` through ``flow`` with its current mappings would send.

    ``event`` (the stored event the payload comes from) adds the comparison with its last
    accepted update and the check for a newer delivered event. Reads the database only.
    """
    preview = Preview(flow=flow, event=event)
    if event is not None:
        preview.newer_event = newer_event_find(event=event)
    account = flow.account
    if account is None:
        preview.problem = UpdateProblem(
            EventStatus.FAILED,
            gettext("Flow “%(flow)s” has no AmoCRM account.") % {"flow": flow},
        )
        return preview
    try:
        prepared = lead_update_prepare(flow=flow, payload=payload)
    except UpdateProblem as problem:
        preview.problem = problem
        preview.values, preview.errors = _values_despite(flow, payload)
        return preview
    preview.values = prepared.values
    preview.target = _target(flow, prepared.rdesk_lead_id)
    preview.requests = _requests(flow, preview.target, prepared.update)
    if event is not None:
        preview.diff = _diff(event, preview.target, prepared.update)
        preview.never_delivered = preview.diff is None
    return preview


def _values_despite(flow: Flow, payload) -> tuple[dict | None, dict | None]:
    """The named values of a payload that gives no update, or the serializer's errors."""
    spec = FLOW_KINDS[flow.kind]
    serializer = spec.schema(data=payload)
    if not serializer.is_valid():
        return None, serializer.errors
    return spec.values_for(serializer.validated_data, tz=ZoneInfo(flow.account.timezone)), None


def _target(flow: Flow, rdesk_lead_id: int) -> LeadTarget:
    if not flow.mock_lead_id:
        return LeadTarget(rdesk_lead_id=rdesk_lead_id, lead_id=rdesk_lead_id)
    name = mock_lead_name(rdesk_lead_id)
    alias = LeadAlias.objects.filter(
        account_id=flow.account_id, rdesk_lead_id=rdesk_lead_id
    ).first()
    if alias is not None:
        return LeadTarget(
            rdesk_lead_id=rdesk_lead_id, lead_id=alias.amocrm_lead_id, mock_name=name, alias=alias
        )
    new_lead = mock_lead_body(flow=flow, rdesk_lead_id=rdesk_lead_id, client=None)
    return LeadTarget(
        rdesk_lead_id=rdesk_lead_id,
        lead_id=None,
        mock_name=name,
        new_lead=new_lead or {"name": name, "request_id": str(rdesk_lead_id)},
        stage_from_amocrm=new_lead is None,
    )


def _requests(flow: Flow, target: LeadTarget, update: dict) -> list[PlannedRequest]:
    base = flow.account.api_base_url
    planned = []
    lead_id: int | str | None = target.lead_id
    if lead_id is None:
        # The search's first page, as ``leads._lead_named`` asks for it.
        query = urlencode({"query": target.mock_name, "limit": SEARCH_PAGE_SIZE, "page": 1})
        planned.append(PlannedRequest(Step.SEARCH, "GET", f"{base}{amocrm.LEADS_PATH}?{query}"))
        create = amocrm.leads_create_request([target.new_lead])
        planned.append(PlannedRequest(Step.CREATE, create.method, base + create.path, create.body))
        lead_id = "{" + gettext("id of %(name)s") % {"name": target.mock_name} + "}"
    request = amocrm.lead_update_request(lead_id, update)
    planned.append(PlannedRequest(Step.UPDATE, request.method, base + request.path, request.body))
    return planned


def _diff(event: InboundEvent, target: LeadTarget, update: dict) -> UpdateDiff | None:
    attempt = (
        event.delivery_attempts.filter(
            request_method="PATCH", response_status__gte=200, response_status__lt=300
        )
        .order_by("-started_at", "-id")
        .first()
    )
    if attempt is None:
        return None
    sent = _fields(_sent_update(attempt.request_body, target.lead_id))
    now = _fields(update)
    labels = _labels(event.flow.account_id, [*now, *sent])
    changes, unchanged = [], 0
    for key, new in now.items():
        if key not in sent:
            changes.append(FieldChange(key, labels[key], Change.ADDED, new=new))
        elif sent[key] != new:
            changes.append(FieldChange(key, labels[key], Change.CHANGED, sent[key], new))
        else:
            unchanged += 1
    changes.extend(
        FieldChange(key, labels[key], Change.REMOVED, old=old)
        for key, old in sent.items()
        if key not in now
    )
    return UpdateDiff(attempt=attempt, changes=changes, unchanged=unchanged)


def _sent_update(body, lead_id: int | None) -> dict:
    """The lead's update in a stored request body: one lead's, or its item of a batch."""
    if isinstance(body, list):
        items = [item for item in body if isinstance(item, dict)]
        mine = [item for item in items if lead_id is not None and item.get("id") == lead_id]
        body = (mine or items or [{}])[0]
    return body if isinstance(body, dict) else {}


def _fields(update: dict) -> dict[str, Any]:
    """An update's fields by key: its top-level values, then each custom field's values."""
    fields = {k: v for k, v in update.items() if k not in ("id", "custom_fields_values")}
    for entry in update.get("custom_fields_values") or []:
        fields[f"field:{entry.get('field_id')}"] = entry.get("values")
    return fields


def _labels(account_id: int | None, keys: list[str]) -> dict[str, str]:
    names = dict(CustomField.objects.filter(account_id=account_id).values_list("field_id", "name"))
    fixed = {
        "price": gettext("Price"),
        "pipeline_id": gettext("Pipeline"),
        "status_id": gettext("Stage"),
        "name": gettext("Lead name"),
    }
    labels = {}
    for key in keys:
        if not key.startswith("field:"):
            labels[key] = fixed.get(key, key)
            continue
        field_id = key.removeprefix("field:")
        name = names.get(int(field_id)) if field_id.isdigit() else None
        labels[key] = f"{name} ({field_id})" if name else gettext("Field %(id)s") % {"id": field_id}
    return labels
