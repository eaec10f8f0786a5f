"""Sending lead updates to AmoCRM in batches and splitting out what AmoCRM refused.

AmoCRM refuses a whole batch for one bad item: a 400 naming the item by ``request_id``
(we send each event's id as its ``request_id``), or a 404 when a lead is missing. The
refused items fail with AmoCRM's own detail and the rest go again at once without them.
A 504 (the batch is too heavy) or 413 halves the batch and retries. An item sent alone
goes as ``PATCH /api/v4/leads/{id}``, the documented single-lead request, whose answer
concerns that lead only. Whatever else stops a call (an outage, 429, 401, a lost claim)
stops the whole send: the caller turns it into retries.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from integrations.amocrm import client as amocrm
from integrations.amocrm.client import AmoCRMClient, redact
from integrations.sync.claims import ClaimLost, FencedLimiter
from integrations.sync.models import InboundEvent
from integrations.sync.outcomes import CallLog

REFUSED_WITH_BATCH = "RefusedWithBatch"
REFUSED_WITH_BATCH_DETAIL = (
    "AmoCRM refused the whole batch because of other items; this one was sent again."
)


@dataclass
class Item:
    """One lead update to send: the event it carries, the lead, and the PATCH body."""

    event: InboundEvent
    lead_id: int
    label: str  # how reasons name the lead, e.g. "24000001 (ID_5)"
    update: dict

    def batch_part(self) -> dict:
        return {"id": self.lead_id, **self.update, "request_id": str(self.event.pk)}


@dataclass
class Sent:
    """What became of each item, and every call made, in order."""

    delivered: list[Item] = field(default_factory=list)
    refused: list[tuple[Item, str]] = field(default_factory=list)  # AmoCRM's detail
    missing: list[tuple[Item, str]] = field(default_factory=list)
    errors: list[tuple[Item, Exception]] = field(default_factory=list)  # call failed as a whole
    lost: list[Item] = field(default_factory=list)  # claim taken over; not sent
    logs: list[CallLog] = field(default_factory=list)
    halted: bool = False


def items_send(
    *, client: AmoCRMClient, guard: FencedLimiter, items: list[Item], batch_size: int
) -> Sent:
    """Sends ``items`` in batches of at most ``batch_size``; see the module docstring."""
    sent = Sent()
    queue = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    while queue:
        group = queue.pop(0)
        guard.carrying = [item.event.pk for item in group]
        before = len(client.calls)
        try:
            answer = _patch(client, group)
        except amocrm.ValidationFailed as error:
            queue[:0] = _refusal_split(sent, client, before, group, error)
            continue
        except amocrm.NotFound as error:
            queue[:0] = _missing_split(sent, client, guard, before, group, error)
            continue
        except amocrm.AmoCRMError as error:
            if error.status in (413, 504) and len(group) > 1:
                _log(sent, client, before, group)  # the call's own error: 413 or 504
                half = len(group) // 2
                queue[:0] = [group[:half], group[half:]]
                continue
            if error.status == 413:
                _log(sent, client, before, group)
                sent.refused.append((group[0], f"Too large for AmoCRM: {error.detail}"))
                continue
            _halt(sent, client, before, group, queue, error)
            break
        except ClaimLost:
            _log(sent, client, before, group)
            sent.lost.extend(item for batch in [group, *queue] for item in batch)
            sent.halted = True
            break
        except Exception as error:  # outages of Redis or the database, and bugs
            _halt(sent, client, before, group, queue, error)
            break
        _log_answer(sent, client, before, group, answer)
        sent.delivered.extend(group)
    guard.carrying = []
    return sent


def _patch(client: AmoCRMClient, group: list[Item]) -> Any:
    if len(group) == 1:
        (item,) = group
        return client.request(
            "PATCH", amocrm.LEAD_PATH.format(lead_id=item.lead_id), json=item.update
        )
    return client.request("PATCH", amocrm.LEADS_PATH, json=[item.batch_part() for item in group])


def _halt(sent, client, before, group, queue, error) -> None:
    _log(sent, client, before, group)
    sent.errors.extend((item, error) for batch in [group, *queue] for item in batch)
    sent.halted = True


def _refusal_split(sent, client, before, group, error) -> list[list[Item]]:
    """Fails the items AmoCRM named; returns what to send again."""
    if len(group) == 1:
        _log(sent, client, before, group)
        sent.refused.append((group[0], error.detail))
        return []
    named = _named_items(group, error)
    if not named:  # nothing says which item: halve until the culprit is alone
        _log(sent, client, before, group)
        half = len(group) // 2
        return [group[:half], group[half:]]
    rest = [item for item in group if item.event.pk not in named]
    parts = {
        item.event.pk: (
            (_dumps(named[item.event.pk][1]), "ValidationFailed", named[item.event.pk][0])
            if item.event.pk in named
            else ("", REFUSED_WITH_BATCH, REFUSED_WITH_BATCH_DETAIL)
        )
        for item in group
    }
    _log_parts(sent, client, before, group, parts)
    sent.refused.extend((item, named[item.event.pk][0]) for item in group if item.event.pk in named)
    return [rest] if rest else []


def _named_items(group: list[Item], error: amocrm.ValidationFailed) -> dict[int, tuple]:
    """The items a 400 names, by event id: (the detail for that item, its entry)."""
    body = _body_of(error)
    head = ": ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
    by_request = {str(item.event.pk): item for item in group}
    by_index = {str(n): item for n, item in enumerate(group)}
    by_lead = {str(item.lead_id): item for item in group}
    named = {}
    for entry in error.errors:
        request_id = str(entry.get("request_id"))
        item = by_request.get(request_id) or by_index.get(request_id)
        if item is None:
            continue
        problems = [
            f"{e.get('path')}: {e.get('detail')} ({e.get('code')})" for e in entry.get("errors", [])
        ]
        named[item.event.pk] = ("; ".join([head, *problems]), entry)
    errors = body.get("errors")
    if isinstance(errors, dict):  # {"<lead id>": "reason"}, another shape AmoCRM uses
        for lead_id, reason in errors.items():
            item = by_lead.get(str(lead_id))
            if item is not None:
                named[item.event.pk] = (f"{head}; {lead_id}: {reason}", {lead_id: reason})
    return named


def _missing_split(sent, client, guard, before, group, error) -> list[list[Item]]:
    """Fails the items whose lead AmoCRM does not have; returns what to send again."""
    if len(group) == 1:
        _log(sent, client, before, group)
        sent.missing.append((group[0], error.detail))
        return []
    patch_calls = client.calls[before:]
    lookup_before = len(client.calls)
    ids = sorted({item.lead_id for item in group})
    try:
        body = client.request(
            "GET", amocrm.LEADS_PATH, params={"filter[id][]": ids, "limit": len(ids)}
        )
    except Exception:  # cannot tell which: halve instead
        found = None
    else:
        leads = (body or {}).get("_embedded", {}).get("leads", [])
        found = {lead["id"] for lead in leads}
    gone = [item for item in group if found is not None and item.lead_id not in found]
    parts = {
        item.event.pk: (
            ("", "NotFound", error.detail)
            if item in gone
            else ("", REFUSED_WITH_BATCH, REFUSED_WITH_BATCH_DETAIL)
        )
        for item in group
    }
    for call in patch_calls:
        sent.logs.append(_call_log(call, group, parts))
    for call in client.calls[lookup_before:]:
        sent.logs.append(CallLog(call, [(item.event, None, "", "", "") for item in group]))
    if not gone:
        half = len(group) // 2
        return [group[:half], group[half:]]
    sent.missing.extend((item, error.detail) for item in gone)
    rest = [item for item in group if item not in gone]
    return [rest] if rest else []


# --- the audit trail ------------------------------------------------------------------


def _log(sent, client, before, group, error_class="", error_detail="") -> None:
    parts = {item.event.pk: ("", error_class, error_detail) for item in group}
    _log_parts(sent, client, before, group, parts)


def _log_parts(sent, client, before, group, parts) -> None:
    for call in client.calls[before:]:
        sent.logs.append(_call_log(call, group, parts))


def _call_log(call, group: list[Item], parts: dict) -> CallLog:
    """Each event's item and its part of the answer (the whole answer if none is given)."""
    log = CallLog(call)
    # The client has already redacted the request it sent; each item is its part of it.
    sent_parts = call.request_body if len(group) > 1 else [call.request_body]
    if not _request_of(sent_parts, group):
        sent_parts = [
            redact(item.batch_part()) if len(group) > 1 else redact(item.update) for item in group
        ]
    for item, sent_part in zip(group, sent_parts, strict=True):
        answer, error_class, error_detail = parts.get(item.event.pk, ("", "", ""))
        log.parts.append(
            (item.event, sent_part, answer or call.response_body, error_class, error_detail)
        )
    return log


def _request_of(sent_parts, group: list[Item]) -> bool:
    """Whether ``sent_parts`` is the request made of ``group``, item by item."""
    if not isinstance(sent_parts, list) or len(sent_parts) != len(group):
        return False
    if len(group) == 1:
        return isinstance(sent_parts[0], dict) and sent_parts[0].keys() == group[0].update.keys()
    return all(
        isinstance(part, dict) and part.get("request_id") == str(item.event.pk)
        for part, item in zip(sent_parts, group, strict=True)
    )


def _log_answer(sent, client, before, group, answer) -> None:
    """The calls of a successful send; each event gets its own entry of the answer."""
    entries = (answer or {}).get("_embedded", {}).get("leads", []) if len(group) > 1 else []
    by_request = {str(e.get("request_id")): e for e in entries if "request_id" in e}
    by_id = {e.get("id"): e for e in entries}
    parts = {}
    for n, item in enumerate(group):
        entry = by_request.get(str(item.event.pk)) or by_id.get(item.lead_id)
        if entry is None and n < len(entries):
            entry = entries[n]
        parts[item.event.pk] = (_dumps(entry) if entry is not None else "", "", "")
    calls = client.calls[before:]
    for call in calls[:-1]:  # e.g. a 401 before the token was refreshed
        sent.logs.append(_call_log(call, group, {}))
    if calls:
        sent.logs.append(_call_log(calls[-1], group, parts))


def _body_of(error: amocrm.AmoCRMError) -> dict:
    try:
        body = json.loads(error.call.response_body) if error.call else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _dumps(value) -> str:
    return json.dumps(redact(value), ensure_ascii=False)
