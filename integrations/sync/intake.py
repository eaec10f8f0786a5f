"""Receiving a webhook: store the raw body first, then enqueue delivery on commit.

A request is accepted or refused whole. Either way it is stored: accepted items become
one ``received`` event each; a refused body becomes one ``rejected`` event with the
reason, and the caller gets a 4xx JSON error naming the problem.
"""

import hashlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.sync.delivery import events_enqueue
from integrations.sync.intake_auth import request_authenticate
from integrations.sync.models import EventStatus, Flow, InboundEvent

logger = logging.getLogger(__name__)

OK_BODY = {"status": "ok"}  # exactly what the old service answered
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
    # What may authenticate the caller (intake_auth.py); never stored.
    path_token: str = ""
    query_token: str = ""
    authorization: str = ""


class IntakeRefused(Exception):
    """The body cannot be accepted; ``code`` names the problem, ``detail`` explains it."""

    def __init__(self, http_status: int, code: str, detail: str, payload=None):
        super().__init__(detail)
        self.http_status = http_status
        self.code = code
        self.detail = detail
        self.payload = payload

    @property
    def body(self) -> dict:
        return {"status": "error", "error": self.code, "detail": self.detail}


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


def items_parse(request: IntakeRequest) -> list[dict]:
    """The posted items (an array of objects, or one object); raises ``IntakeRefused``."""
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
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise IntakeRefused(400, "malformed_json", f"Body is not valid JSON: {error}.") from error
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
    return items


def _identifier(item: dict, key: str) -> str:
    value = item.get(key)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)[:64]
    return ""


def request_receive(*, flow: Flow, request: IntakeRequest) -> tuple[int, dict]:
    """Stores the request as events and schedules delivery; returns (HTTP status, body)."""
    now = timezone.now()
    refusal = request_authenticate(flow, request, now=now)
    # A caller who may not post does not get to fill the disk: only its body's start is kept.
    limit = request.max_bytes if refusal is None else settings.HUB_REJECTED_BODY_BYTES
    stored = request.body[:limit]
    common = {
        "flow": flow,
        "received_at": now,
        "remote_addr": request.remote_addr,
        "headers": {k: v for k, v in request.headers.items() if k.lower() not in _UNSTORED_HEADERS},
        "raw_body": stored,
        "body_hash": hashlib.sha256(stored).hexdigest(),
    }
    try:
        if refusal is not None:
            raise refusal
        items = items_parse(request)
    except IntakeRefused as refusal:
        event = InboundEvent.objects.create(
            **common,
            payload=refusal.payload,
            status=EventStatus.REJECTED,
            last_error=refusal.detail,
        )
        logger.warning(
            "intake rejected",
            extra={"flow": flow.pk, "event": event.pk, "error": refusal.code},
        )
        return refusal.http_status, refusal.body

    with transaction.atomic():
        events = InboundEvent.objects.bulk_create(
            InboundEvent(
                **common,
                item_index=index,
                payload=item,
                rdesk_id=_identifier(item, "id"),
                lead_id=_identifier(item, "lead_id"),
                next_attempt_at=now,
            )
            for index, item in enumerate(items)
        )
        ids = [event.pk for event in events]
        transaction.on_commit(lambda: events_enqueue(ids), robust=True)
    logger.info("intake accepted", extra={"flow": flow.pk, "events": ids})
    return 200, OK_BODY
