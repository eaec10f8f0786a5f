"""Receiving a webhook: store the raw body first, then enqueue delivery on commit.

A request is accepted or refused whole. Either way it is stored: accepted items become
one ``received`` event each; a refused body (not JSON, too many items, an item that does
not fit the flow's schema) becomes one ``rejected`` event with the reason, and the caller
gets a 4xx JSON error naming the problem. Answering costs one INSERT: the flow comes from
an in-process cache (``flow_routes``) and the items are validated in memory.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from integrations.rdesk.schemas import PayloadInvalid, payload_validate
from integrations.sync.delivery import events_enqueue, nudge_pending
from integrations.sync.intake_auth import request_authenticate
from integrations.sync.intake_batches import events_insert_async, in_orm_thread
from integrations.sync.intake_nudges import nudge_want
from integrations.sync.intake_store import (
    events_insert,
    events_unsaved,
    once_more_on_a_new_connection,
)
from integrations.sync.item_errors import errors_summary, item_errors
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import EventStatus, Flow, InboundEvent
from integrations.sync.storable_json import NotStorable, json_parse, text_storable

logger = logging.getLogger(__name__)

OK_BODY = {"status": "ok"}  # exactly what the old service answered
# The database could not take the request, or not confirm it did: RDESK sends it again (a
# duplicate is harmless: per lead only the newest values are sent).
NOT_STORED = {
    "status": "error",
    "error": "not_stored",
    "detail": "The hub could not store the request, or not confirm it. Send it again.",
}
# Headers that may carry credentials are not kept in the audit trail.
_UNSTORED_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-api-key"}


@dataclass(frozen=True)
class IntakeRequest:
    """What the view read from the HTTP request."""

    body: bytes
    content_type: str
    content_length: int
    headers: dict
    remote_addr: str | None
    max_bytes: int
    max_items: int
    # What may authenticate the caller (intake_auth.py); never stored.
    path_token: str = ""
    query_token: str = ""
    authorization: str = ""


class IntakeRefused(Exception):
    """The body cannot be accepted; ``code`` names the problem, ``detail`` explains it.

    ``reason`` is what is stored as the rejected event's last error (``detail`` unless
    more is worth keeping); ``extra`` adds keys to the JSON answer.
    """

    def __init__(
        self, http_status: int, code: str, detail: str, payload=None, *, reason="", extra=None
    ):
        super().__init__(detail)
        self.http_status = http_status
        self.code = code
        self.detail = detail
        self.payload = payload
        self.reason = reason or detail
        self.extra = extra or {}

    @property
    def body(self) -> dict:
        return {"status": "error", "error": self.code, "detail": self.detail, **self.extra}


def _is_json_type(content_type: str) -> bool:
    # Like the old service: no content type, application/json or any */*+json is JSON.
    media_type = content_type.split(";")[0].strip().lower()
    if not media_type:
        return True
    _, _, subtype = media_type.partition("/")
    return subtype == "json" or subtype.endswith("+json")


def _describe(value) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _body_parse(request: IntakeRequest) -> tuple[object, list[dict]]:
    # What the body parsed to (stored with a refusal), and its items (an array of objects,
    # or one object).
    if not _is_json_type(request.content_type):
        raise IntakeRefused(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got '{request.content_type}'.",
        )
    size = max(request.content_length, len(request.body))
    if size > request.max_bytes:
        raise IntakeRefused(
            413,
            "body_too_large",
            f"Body is {size} bytes; the limit is {request.max_bytes} bytes.",
        )
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise IntakeRefused(
            400, "malformed_json", f"Body is not UTF-8: {error.reason} at byte {error.start}."
        ) from error
    if not text.strip():
        raise IntakeRefused(400, "malformed_json", "Body is empty; expected JSON.")
    try:
        data = json_parse(text)
    except NotStorable as error:
        raise IntakeRefused(400, "malformed_json", str(error)) from error
    items = data if isinstance(data, list) else [data]
    if not items:
        raise IntakeRefused(400, "empty_batch", "The array is empty; nothing to deliver.", data)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"Item {index} of the array" if isinstance(data, list) else "The body"
            raise IntakeRefused(
                400,
                "not_an_object",
                f"{where} is {_describe(item)}, not a JSON object.",
                data,
            )
    if len(items) > request.max_items:
        # 413 as for an oversized body: the request is too big for the hub, not wrong, and
        # the same items in smaller requests are accepted.
        raise IntakeRefused(
            413,
            "too_many_items",
            f"The body holds {len(items)} items; the limit is {request.max_items} per "
            "request. Send them in smaller batches.",
            data,
        )
    return data, items


# The start of every stored reason that a re-validation may judge again: the body was
# JSON of objects, and the refusal rests on the schema or on the item limit, both of which
# an upgrade or a setting can change. Other refusals (not JSON, a wrong token) are final.
REJUDGEABLE_REASONS = (r"^\d+ of \d+ items? (is|are) not valid;", r"^The body holds \d+ items;")


def items_validate(*, kind: str, items: list[dict], data) -> None:
    """Raises ``IntakeRefused`` (422) listing each item that does not fit ``kind``'s schema."""
    schema = FLOW_KINDS[kind].schema
    invalid = []
    for index, item in enumerate(items):
        try:
            # English whatever the caller's language: RDESK reads it, and the admin keeps it.
            payload_validate(schema, item, language="en")
        except PayloadInvalid as error:
            with translation.override("en"):
                errors = item_errors(schema, error.errors)
            invalid.append({"index": index, "errors": errors})
    if not invalid:
        return
    count, total = len(invalid), len(items)
    verb = "is" if count == 1 else "are"
    noun = "item" if total == 1 else "items"
    detail = (
        f"{count} of {total} {noun} {verb} not valid; nothing was accepted. "
        "Each item's errors are listed by field."
    )
    raise IntakeRefused(
        422,
        "invalid_items",
        detail,
        data,
        reason=f"{detail}\n{errors_summary(invalid)}",
        extra={"items": invalid},
    )


def items_accept(*, kind: str, request: IntakeRequest) -> list[dict]:
    """The items of a body the intake accepts for a flow of ``kind``; raises ``IntakeRefused``."""
    data, items = _body_parse(request)
    items_validate(kind=kind, items=items, data=data)
    return items


@dataclass(frozen=True)
class Verdict:
    """What a request comes to, before anything is stored.

    ``common`` holds the fields every event of the request shares (flow, raw body,
    headers...); ``items`` the accepted items, or ``refusal`` why none is accepted.
    """

    common: dict
    items: list[dict]
    refusal: IntakeRefused | None


def request_judge(*, flow: Flow, request: IntakeRequest, now) -> Verdict:
    """Authenticates, parses and validates the request, in memory; touches no database."""
    refusal = request_authenticate(flow, request, now=now)
    # A caller who may not post does not get to fill the disk: only its body's start is kept.
    limit = request.max_bytes if refusal is None else settings.HUB_REJECTED_BODY_BYTES
    stored = request.body[:limit]
    common = {
        "flow": flow,
        "received_at": now,
        "remote_addr": request.remote_addr,
        "headers": {
            text_storable(name): text_storable(value)
            for name, value in request.headers.items()
            if name.lower() not in _UNSTORED_HEADERS
        },
        "raw_body": stored,
        "body_hash": hashlib.sha256(stored).hexdigest(),
    }
    try:
        if refusal is not None:
            raise refusal
        items = items_accept(kind=flow.kind, request=request)
    except IntakeRefused as refused:
        return Verdict(common=common, items=[], refusal=refused)
    return Verdict(common=common, items=items, refusal=None)


def refusal_store(verdict: Verdict) -> tuple[int, dict]:
    """Stores a refused request as one ``rejected`` event; returns (HTTP status, body)."""
    refusal = verdict.refusal
    # Stored like the accepted items, also on the first request after a restart.
    event = once_more_on_a_new_connection(
        lambda: InboundEvent.objects.create(
            **verdict.common,
            payload=refusal.payload,
            status=EventStatus.REJECTED,
            last_error=text_storable(refusal.reason),
        )
    )
    # The code only: the detail may describe what was sent.
    logger.warning(
        "intake rejected",
        extra={"flow": verdict.common["flow"].pk, "event": event.pk, "error": refusal.code},
    )
    return refusal.http_status, refusal.body


def request_receive(*, flow: Flow, request: IntakeRequest) -> tuple[int, dict]:
    """Stores the request as events and schedules delivery; returns (HTTP status, body)."""
    now = timezone.now()
    verdict = request_judge(flow=flow, request=request, now=now)
    if verdict.refusal is not None:
        return refusal_store(verdict)
    ids = items_store(common=verdict.common, items=verdict.items, due=now)
    accepted_log(flow, ids)
    return 200, OK_BODY


def accepted_log(flow: Flow, ids: list[int]) -> None:
    """Logs an accepted request's events, at DEBUG: the access log has every request
    already, and the sync history every event; a line of its own at INFO cost a burst a
    tenth of the intake's time. Refusals are logged at WARNING."""
    logger.debug("intake accepted", extra={"flow": flow.pk, "events": ids})


def items_store(*, common: dict, items: list[dict], due) -> list[int]:
    """Inserts one ``received`` event per item, due at ``due``, in one round trip, and
    nudges the workers once it is committed, unless a nudge is already on its way;
    returns the new events' ids.

    ``common`` holds the fields every item's event shares (flow, raw body, headers...).
    """
    account_id = common["flow"].account_id
    ids, nudged_at = events_insert(
        events_unsaved(common=common, items=items, due=due), account_id=account_id
    )
    # Under load the account's drain is nearly always nudged already: its worker takes
    # these events with the rest. (A flow with no account is always nudged.)
    if account_id is None or not nudge_pending(nudged_at):
        transaction.on_commit(lambda: events_enqueue(ids, account_ids=[account_id]), robust=True)
    return ids


async def request_receive_async(*, flow: Flow, request: IntakeRequest) -> tuple[int, dict]:
    """``request_receive`` for an event loop (the ASGI front door, intake_asgi.py).

    The judgement runs in the loop and the accepted items are inserted with those of
    the requests that came at the same time (intake_batches.py); a refusal's row (rare)
    is stored by the ORM, off the loop. The workers' nudge is coalesced across requests
    (intake_nudges.py), and not waited for.
    """
    now = timezone.now()
    verdict = request_judge(flow=flow, request=request, now=now)
    if verdict.refusal is not None:
        return await in_orm_thread(refusal_store, verdict)
    ids = await events_insert_async(common=verdict.common, items=verdict.items, due=now)
    # Committed: the workers may take the events.
    nudge_want(flow.account_id)
    accepted_log(flow, ids)
    return 200, OK_BODY
