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

from django.conf import settings
from django.db import DatabaseError
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
        headers = _headers(scope)
        secure = _is_secure(scope, headers)
        try:
            route = await flow_route_async(scope["path"]) if scope["method"] == "POST" else None
        except DatabaseError:
            # The flows could not be read: the request cannot be judged, nor stored.
            logger.exception("intake failed: the flows could not be read")
            intake_answered("", 500)
            return await _send(send, 500, NOT_STORED_CONTENT, {}, secure=secure)
        if (
            route is None
            or not _host_allowed(headers)
            or (settings.SECURE_SSL_REDIRECT and not secure)
        ):
            return await self.django(scope, receive, send)
        flow, path_token = route
        limit = settings.HUB_MAX_BODY_BYTES
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
            max_items=settings.HUB_MAX_ITEMS_PER_REQUEST,
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
        await _send(send, status, content, extra, secure=secure)


def _headers(scope) -> dict[str, str]:
    """The request's headers by lower-case name; repeated ones joined as WSGI joins them."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _is_secure(scope, headers: dict[str, str]) -> bool:
    """``HttpRequest.is_secure`` for an ASGI request: the proxy's header when one is set."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = headers.get(meta_name.removeprefix("HTTP_").replace("_", "-").lower())
        if value is not None:
            return value.split(",")[0].strip() == secure_value
    return scope.get("scheme") == "https"


def _host_allowed(headers: dict[str, str]) -> bool:
    """Whether Django's ``get_host`` would take the request's host (else Django answers)."""
    host = headers.get("x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    domain, _ = split_domain_port(host or headers.get("host", ""))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


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


class _SecureRequest:
    def __init__(self, secure: bool):
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


def _security_headers(secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The headers Django's ``SecurityMiddleware`` adds to an answer (nosniff, HSTS...)."""
    values = (getattr(settings, name) for name in _SECURITY)
    # A list (the referrer policy may be one) as a tuple: the cache takes only those.
    return _security_headers_for(
        secure, *(tuple(value) if isinstance(value, list) else value for value in values)
    )


# The settings SecurityMiddleware's answer headers depend on.
_SECURITY = (
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
)


@functools.lru_cache(maxsize=8)
def _security_headers_for(secure: bool, *values) -> tuple[tuple[bytes, bytes], ...]:
    # Built by the middleware itself, once per combination of the settings it reads.
    response = HttpResponse()
    SecurityMiddleware(lambda request: response).process_response(_SecureRequest(secure), response)
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
        if name.lower() != "content-type"
    )


async def _send(send, status: int, content: bytes, extra: dict, *, secure: bool) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"content-language", b"en"),
        *_security_headers(secure),
        *((name.lower().encode("latin-1"), value.encode()) for name, value in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
