"""The RDESK intake endpoint: one view serving every flow's path, and only those.

A plain Django view, not DRF's: the intake reads the body raw and answers fixed JSON, and
DRF's request wrapping and content negotiation would be most of its cost per request.
"""

import json
import logging
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.utils import translation
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from integrations.monitoring.metrics import intake_answered
from integrations.sync.flow_routes import flow_route
from integrations.sync.intake import NOT_STORED, IntakeRequest, request_receive
from integrations.sync.intake_auth import challenge_headers, request_client_address

logger = logging.getLogger(__name__)

NOT_FOUND = {"status": "error", "error": "not_found", "detail": "No flow serves this path."}


def content_length(value: str | None) -> int:
    """The Content-Length header's value as a number (0 when absent or not one)."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def query_token(query: str) -> str:
    """``?token=``, read from the raw query: ``request.GET`` refuses a query of more than
    1,000 fields with Django's HTML 400, and the request would not be stored."""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "token":
            return value
    return ""


def json_content(body: dict) -> str:
    """``body`` as compact JSON, byte for byte what the old service sent."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def json_response(status: int, body: dict, **headers) -> HttpResponse:
    """``body`` as an ``application/json`` answer (``json_content``)."""
    return HttpResponse(
        json_content(body), status=status, content_type="application/json", headers=headers
    )


@method_decorator(csrf_exempt, name="dispatch")
class IntakeView(View):
    """POST a JSON array of items (or one item) to a flow's path; answers {"status":"ok"}.

    Paths no flow serves are not found whatever the method (a browser's /favicon.ico, a
    scanner's probe); a flow's path takes POST only. RDESK cannot sign its calls: each
    flow says who may post (intake_auth.py), checked in request_receive.
    """

    def dispatch(self, request, endpoint: str):
        # RDESK reads the old service's English answers, whatever the admin's language.
        with translation.override("en"):
            flow_name, response = self._answer(request, f"/{endpoint}")
        # By flow name (bounded, unlike paths); "" for paths no flow serves.
        intake_answered(flow_name, response.status_code)
        response.headers["Content-Language"] = "en"
        # Django would log every 4xx with its path, which may hold the flow's token; the
        # intake logs its refusals itself, without it.
        response._has_been_logged = True
        return response

    def _answer(self, request, path: str) -> tuple[str, HttpResponse]:
        route = flow_route(path)
        if route is None:
            return "", json_response(404, NOT_FOUND)
        flow, path_token = route
        if request.method != "POST":
            return flow.name, json_response(
                405,
                {
                    "status": "error",
                    "error": "method_not_allowed",
                    "detail": f'Method "{request.method}" not allowed.',
                },
                Allow="POST",
            )
        limit = settings.HUB_MAX_BODY_BYTES
        try:
            status, payload = self._receive(request, flow, path_token, limit)
        except DatabaseError:
            # As the ASGI door answers: JSON RDESK can act on, not Django's HTML page.
            logger.exception("intake failed", extra={"flow": flow.pk})
            return flow.name, json_response(500, NOT_STORED)
        headers = challenge_headers(flow) if status == 401 else {}
        return flow.name, json_response(status, payload, **headers)

    def _receive(self, request, flow, path_token: str, limit: int) -> tuple[int, dict]:
        return request_receive(
            flow=flow,
            request=IntakeRequest(
                body=request.read(limit + 1),
                content_type=request.META.get("CONTENT_TYPE", ""),
                content_length=content_length(request.META.get("CONTENT_LENGTH")),
                headers=dict(request.headers),
                remote_addr=request_client_address(request.META),
                max_bytes=limit,
                max_items=settings.HUB_MAX_ITEMS_PER_REQUEST,
                path_token=path_token,
                query_token=query_token(request.META.get("QUERY_STRING", "")),
                authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            ),
        )
