"""Building the batch from a claim: coalesce each lead's events, prepare, find the leads.

A claim holds whole leads by their newest pending event (see claims.py). Per lead the
newest event that gives an update is the one sent; older ones end skipped, naming it
(those left out of the claim in one statement when it is finished: ``Plan.older``);
newer ones that give no update (invalid, nothing mapped, flow disabled) end as they would
alone, and bring the lead's older events into the claim. Mock lead id mode coalesces on
the RDESK lead id the same way and finds or creates the mock leads for the whole batch
at once.
"""

import json
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient, redact
from integrations.amocrm.models import Account
from integrations.sync.claims import Claim, claim_widen
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
    # Per lead id: the claimed event its older pending events, left out of the claim,
    # are measured against, and how they end.
    older: dict[str, tuple[InboundEvent, Outcome]] = field(default_factory=dict)


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

    def pick(key: str):
        return _coalesce(groups[key], plan, delivered.get(key), setups)

    picks = {key: pick(key) for key in groups}
    # Leads whose claimed events give no update: an older event of theirs may.
    unsent = {key for key, chosen in picks.items() if chosen is None and key not in plan.older}
    for event in claim_widen(claim, {key for key in unsent if not key.startswith("#")}):
        groups[lead_key(event)].append(event)
    picks.update((key, pick(key)) for key in unsent & claim.widened)
    chosen = sorted(
        (pick for pick in picks.values() if pick is not None),
        key=lambda pick: (pick[0].received_at, pick[0].pk),
    )
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
    if superseded_by is not None and superseded_by.lead_id:
        plan.older[superseded_by.lead_id] = (
            superseded_by,
            _already_delivered(delivered_newer)
            if delivered_newer is not None
            else _superseded(superseded_by),
        )
    return winner


def older_follow_newest(claim: Claim, plan: Plan, outcomes: dict[int, Outcome]) -> None:
    """Leads with no event chosen to measure their older events against (the account is
    disconnected or missing, or delivery broke off): those events wait as the lead's
    newest claimed one waits (paused, retried later) instead of making the lead due
    again at once, or fail with it for want of an account. Any other end of the newest
    is its own: the older events stay due, and the next claim takes them."""
    newest: dict[str, InboundEvent] = {}
    for event in claim.events:
        lead_id = event.lead_id
        if lead_id and lead_id not in claim.widened and not _newer(newest.get(lead_id), event):
            newest[lead_id] = event
    for lead_id, event in newest.items():
        outcome = outcomes.get(event.pk)
        if lead_id in plan.older or outcome is None:
            continue
        if outcome.status == EventStatus.QUEUED or claim.account_id is None:
            plan.older[lead_id] = (event, outcome)


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
