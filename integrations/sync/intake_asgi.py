"""The intake's paths under ASGI: RDESK's POSTs answered in the event loop.

gunicorn's asgi worker (``hub/asgi.py``) hands every request under ``HUB_LEAN_PATHS``
here. A POST to a flow's path is judged in the loop by the same code as the Django view
(``intake.request_judge``) and its items inserted on a pooled asynchronous connection:
no thread, and no Django request, middleware or response object per request, which
were most of a request's cost. Anything else (a path no flow serves, another method, a
host Django would refuse, plain HTTP that Django would redirect) goes to Django itself,
so it is answered exactly as before.
"""

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.security import SecurityMiddleware

from integrations.monitoring.metrics import intake_answered
from integrations.sync.flow_routes import flow_route_async
from integrations.sync.intake import (
    NOT_STORED,
    OK_BODY,
    IntakeRequest,
    request_receive_async,
)
from integrations.sync.intake_auth import challenge_headers, request_client_address
from integrations.sync.views import content_length, json_content, query_token

logger = logging.getLogger(__name__)

OK_CONTENT = json_content(OK_BODY).encode()
NOT_STORED_CONTENT = json_content(NOT_STORED).encode()


class IntakeDoor:
    """An ASGI application for the intake's paths; ``django`` answers what it does not."""

    def __init__(self, django):
        self.django = django

    async def __call__(self, scope, receive, send):
        door = _door_settings()
        headers = _headers(scope)
        secure = _is_secure(scope, headers, door)
        try:
            route = await flow_route_async(scope["path"]) if scope["method"] == "POST" else None
        except DatabaseError:
            # The flows could not be read: the request cannot be judged, nor stored.
            logger.exception("intake failed: the flows could not be read")
            intake_answered("", 500)
            return await _send(send, 500, NOT_STORED_CONTENT, {}, door, secure=secure)
        if route is None or not _host_allowed(headers, door) or (door.ssl_redirect and not secure):
            return await self.django(scope, receive, send)
        flow, path_token = route
        limit = door.max_body_bytes
        body = await _body(receive, limit + 1)
        if body is None:
            return  # the caller left before it had sent its body: nobody to answer
        request = IntakeRequest(
            body=body,
            content_type=headers.get("content-type", ""),
            content_length=content_length(headers.get("content-length")),
            headers={name.title(): value for name, value in headers.items()},
            remote_addr=request_client_address(
                {
                    "REMOTE_ADDR": (scope.get("client") or ("",))[0],
                    "HTTP_X_FORWARDED_FOR": headers.get("x-forwarded-for", ""),
                }
            ),
            max_bytes=limit,
            max_items=door.max_items,
            path_token=path_token,
            query_token=query_token(scope.get("query_string", b"").decode("latin-1")),
            authorization=headers.get("authorization", ""),
        )
        # RDESK reads the old service's English answers, whatever the admin's language:
        # the judgement words its own (in English, and DRF's when asked to).
        try:
            status, answer = await request_receive_async(flow=flow, request=request)
        except Exception:
            # The path may carry the flow's token: the flow's id says enough.
            logger.exception("intake failed", extra={"flow": flow.pk})
            status, answer = 500, NOT_STORED
        extra = challenge_headers(flow) if status == 401 else {}
        intake_answered(flow.name, status)
        content = OK_CONTENT if answer is OK_BODY else json_content(answer).encode()
        await _send(send, status, content, extra, door, secure=secure)


def _headers(scope) -> dict[str, str]:
    """The request's headers by lower-case name; repeated ones joined as WSGI joins them."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _is_secure(scope, headers: dict[str, str], door: "_DoorSettings") -> bool:
    """``HttpRequest.is_secure`` for an ASGI request: the proxy's header when one is set."""
    if door.proxy_ssl_header is not None:
        header, secure_value = door.proxy_ssl_header
        value = headers.get(header)
        if value is not None:
            return value.split(",")[0].strip() == secure_value
    return scope.get("scheme") == "https"


def _host_allowed(headers: dict[str, str], door: "_DoorSettings") -> bool:
    """Whether Django's ``get_host`` would take the request's host (else Django answers)."""
    host = headers.get("x-forwarded-host") if door.use_x_forwarded_host else None
    return _host_valid(host or headers.get("host", ""), door.allowed_hosts)


@functools.lru_cache(maxsize=64)
def _host_valid(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    # A caller names the same few hosts again and again.
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


async def _body(receive, most: int) -> bytes | None:
    """Up to ``most`` bytes of the body (what follows is not kept); None on a disconnect."""
    chunks, size, more = [], 0, True
    while more and size < most:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)[:most]


@dataclass(frozen=True)
class _DoorSettings:
    """The settings the door reads for every request, read once (``_door_settings``)."""

    max_body_bytes: int
    max_items: int
    ssl_redirect: bool
    # SECURE_PROXY_SSL_HEADER as (the ASGI header's name, the value meaning https).
    proxy_ssl_header: tuple[str, str] | None
    use_x_forwarded_host: bool
    allowed_hosts: tuple[str, ...]
    # The headers Django's SecurityMiddleware adds to an answer, for plain HTTP and HTTPS.
    security_headers: dict[bool, tuple[tuple[bytes, bytes], ...]]


@functools.cache
def _door_settings() -> _DoorSettings:
    proxy_ssl_header = None
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        proxy_ssl_header = (meta_name.removeprefix("HTTP_").replace("_", "-").lower(), secure_value)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host
    return _DoorSettings(
        max_body_bytes=settings.HUB_MAX_BODY_BYTES,
        max_items=settings.HUB_MAX_ITEMS_PER_REQUEST,
        ssl_redirect=settings.SECURE_SSL_REDIRECT,
        proxy_ssl_header=proxy_ssl_header,
        use_x_forwarded_host=settings.USE_X_FORWARDED_HOST,
        allowed_hosts=tuple(allowed),
        security_headers={secure: _security_headers(secure) for secure in (False, True)},
    )


@receiver(setting_changed)
def _door_settings_forget(**kwargs) -> None:
    # Settings change in tests alone; the door then reads them again.
    _door_settings.cache_clear()


class _SecureRequest:
    def __init__(self, secure: bool):
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


def _security_headers(secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers Django's ``SecurityMiddleware`` adds to an answer (nosniff, HSTS...),
    built by the middleware itself."""
    response = HttpResponse()
    SecurityMiddleware(lambda request: response).process_response(_SecureRequest(secure), response)
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
        if name.lower() != "content-type"
    )


async def _send(
    send, status: int, content: bytes, extra: dict, door: _DoorSettings, *, secure: bool
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"content-language", b"en"),
        *door.security_headers[secure],
        *((name.lower().encode("latin-1"), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
