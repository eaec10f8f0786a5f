"""Building the batch from a claim: coalesce each lead's events, prepare, find the leads.

A claim holds whole leads (see claims.py), so each lead's pending events are all here.
Per lead the newest event that gives an update is the one sent; older ones end skipped,
naming it; newer ones that give no update (invalid, nothing mapped, flow disabled) end
as they would alone. Mock lead id mode coalesces on the RDESK lead id the same way and
finds or creates the mock leads for the whole batch at once.
"""

import json
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient, redact
from integrations.amocrm.models import Account
from integrations.sync.claims import Claim
from integrations.sync.leads import (
    LeadTargetError,
    lead_targets,
    mock_lead_name,
    newest_delivered,
)
from integrations.sync.models import EventStatus, Flow, InboundEvent
from integrations.sync.outcomes import CallLog, Outcome, outcome_of_error, paused
from integrations.sync.sending import Item
from integrations.sync.updates import (
    FlowSetup,
    PreparedUpdate,
    UpdateProblem,
    flow_setup,
    lead_update_prepare,
)


@dataclass
class Plan:
    """What to send, and the events already settled without a call to make."""

    items: list[Item] = field(default_factory=list)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    logs: list[CallLog] = field(default_factory=list)


def lead_key(event: InboundEvent) -> str:
    """Events with the same key update the same lead (their account is the claim's)."""
    return event.lead_id or f"#{event.pk}"


def batch_plan(*, claim: Claim, client: AmoCRMClient | None, batch_size: int) -> Plan:
    """Coalesces and prepares the claim's events into lead updates; see the docstring."""
    plan = Plan()
    if claim.account_id is None:
        for event in claim.events:
            plan.outcomes[event.pk] = Outcome(
                EventStatus.FAILED, f"Flow '{event.flow}' has no AmoCRM account."
            )
        return plan
    account = Account.objects.get(pk=claim.account_id)
    if account.state == Account.State.DISCONNECTED:
        plan.outcomes.update((event.pk, paused(account)) for event in claim.events)
        return plan

    groups: dict[str, list[InboundEvent]] = {}
    for event in claim.events:
        groups.setdefault(lead_key(event), []).append(event)
    # Safe to read now: this worker holds these leads, so nothing newer is in flight.
    delivered = newest_delivered(
        account_id=claim.account_id, lead_ids=sorted({e.lead_id for e in claim.events if e.lead_id})
    )
    setups: dict[int, FlowSetup] = {}
    chosen: list[tuple[InboundEvent, PreparedUpdate]] = []
    for key, events in groups.items():
        pick = _coalesce(events, plan, delivered.get(key), setups)
        if pick is not None:
            chosen.append(pick)
    chosen.sort(key=lambda pick: (pick[0].received_at, pick[0].pk))
    _targets_resolve(chosen, plan, client, batch_size)
    return plan


def _coalesce(
    events: list[InboundEvent],
    plan: Plan,
    latest_delivered: InboundEvent | None,
    setups: dict[int, FlowSetup],
) -> tuple[InboundEvent, PreparedUpdate] | None:
    """The newest event of one lead that gives an update; settles all the others."""
    winner = None
    superseded_by = None  # the event older ones name
    delivered_newer = None
    for event in sorted(events, key=lambda e: (e.received_at, e.pk), reverse=True):
        if superseded_by is not None:
            plan.outcomes[event.pk] = (
                _already_delivered(delivered_newer)
                if delivered_newer is not None
                else _superseded(superseded_by)
            )
            continue
        if not event.flow.enabled:
            plan.outcomes[event.pk] = Outcome(
                EventStatus.SKIPPED, f"Flow '{event.flow}' is disabled."
            )
            continue
        if event.flow_id not in setups:
            setups[event.flow_id] = flow_setup(event.flow)
        try:
            prepared = lead_update_prepare(
                flow=event.flow, payload=event.payload, setup=setups[event.flow_id]
            )
        except UpdateProblem as problem:
            plan.outcomes[event.pk] = Outcome(problem.status, problem.reason)
            continue
        delivered_newer = latest_delivered if _newer(latest_delivered, event) else None
        superseded_by = event
        if delivered_newer is not None:
            plan.outcomes[event.pk] = _already_delivered(delivered_newer)
        else:
            winner = (event, prepared)
    return winner


def _newer(candidate: InboundEvent | None, event: InboundEvent) -> bool:
    """Arrival order, as ``newer_event_find`` has it: received_at, then id."""
    if candidate is None:
        return False
    return (candidate.received_at, candidate.pk) > (event.received_at, event.pk)


def _received(event: InboundEvent) -> str:
    return timezone.localtime(event.received_at).isoformat(timespec="seconds")


def _superseded(newer: InboundEvent) -> Outcome:
    return Outcome(
        EventStatus.SKIPPED,
        f"Superseded by event #{newer.pk} (received {_received(newer)}) for the same lead: "
        "only the newest values are sent.",
    )


def _already_delivered(newer: InboundEvent) -> Outcome:
    return Outcome(
        EventStatus.SKIPPED,
        f"Older than event #{newer.pk} (received {_received(newer)}), already delivered to "
        "this lead: sending this one would overwrite newer data.",
    )


def _targets_resolve(chosen, plan: Plan, client, batch_size: int) -> None:
    """Turns each chosen update into an ``Item`` for its AmoCRM lead."""
    mock: dict[int, Flow] = {}
    by_rdesk: dict[int, InboundEvent] = {}
    for event, prepared in chosen:
        if event.flow.mock_lead_id:
            mock[prepared.rdesk_lead_id] = event.flow
            by_rdesk[prepared.rdesk_lead_id] = event
    results, calls = lead_targets(flows=mock, client=client, batch_size=batch_size)
    for call, parts in calls:
        log = CallLog(call)
        for rdesk_lead_id, part in parts.items():
            sent, answer = part if part else (call.request_body, None)
            log.parts.append(
                (
                    by_rdesk[rdesk_lead_id],
                    redact(sent),
                    _json(answer) if answer is not None else call.response_body,
                    "",
                    "",
                )
            )
        plan.logs.append(log)
    for event, prepared in chosen:
        rdesk_lead_id = prepared.rdesk_lead_id
        if not event.flow.mock_lead_id:
            plan.items.append(Item(event, rdesk_lead_id, str(rdesk_lead_id), prepared.update))
            continue
        target = results[rdesk_lead_id]
        if isinstance(target, LeadTargetError):
            plan.outcomes[event.pk] = Outcome(
                EventStatus.FAILED, f"Cannot find or create the lead: {target}"
            )
        elif isinstance(target, Exception):
            plan.outcomes[event.pk] = outcome_of_error(event, target, mock_lead_name(rdesk_lead_id))
        else:
            label = f"{target} ({mock_lead_name(rdesk_lead_id)})"
            plan.items.append(Item(event, target, label, prepared.update))


def _json(value) -> str:
    return json.dumps(redact(value), ensure_ascii=False)
