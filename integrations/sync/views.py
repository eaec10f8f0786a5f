"""The RDESK intake endpoint: one view serving every flow's path."""

from django.conf import settings
from django.http import Http404
from django.utils import translation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.sync.intake import IntakeRequest, request_receive
from integrations.sync.intake_auth import (
    challenge_headers,
    path_candidates,
    path_flow,
    request_client_address,
)
from integrations.sync.models import Flow


def _flow_for(endpoint: str) -> tuple[Flow, str] | None:
    """The flow serving the path and the token in it (one query), or None."""
    path = f"/{endpoint}"
    flows = Flow.objects.filter(endpoint_path__in=path_candidates(path))
    return path_flow(path, {flow.endpoint_path: flow for flow in flows})


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class IntakeView(APIView):
    """POST a JSON array of items (or one item) to a flow's path; answers {"status":"ok"}."""

    # RDESK cannot sign its calls: each flow says who may post (intake_auth.py), in
    # request_receive. The body is read raw, not parsed here.
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = []

    def dispatch(self, request, *args, **kwargs):
        # RDESK reads the old service's English answers: DRF's own errors (405 for a GET,
        # 404) must not follow the admin's language into the contract.
        with translation.override("en"):
            response = super().dispatch(request, *args, **kwargs)
        response.headers["Content-Language"] = "en"
        # Django would log every 4xx with its path, which may hold the flow's token; the
        # intake logs its refusals itself, without it.
        response._has_been_logged = True
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        # A GET of a path no flow serves (a browser's /favicon.ico) is not found, as it was
        # on the old service; 405 is for a flow's own path.
        if _flow_for(kwargs.get("endpoint", "")) is None:
            raise Http404("No flow serves this path.")
        return super().http_method_not_allowed(request, *args, **kwargs)

    def post(self, request, endpoint: str):
        served = _flow_for(endpoint)
        if served is None:
            raise Http404("No flow serves this path.")
        flow, path_token = served
        limit = settings.HUB_MAX_BODY_BYTES
        stream = request.stream
        body = stream.read(limit + 1) if stream is not None else b""
        status, payload = request_receive(
            flow=flow,
            request=IntakeRequest(
                body=body,
                content_type=request.META.get("CONTENT_TYPE", ""),
                content_length=_content_length(request),
                headers=dict(request.headers),
                remote_addr=request_client_address(request.META),
                max_bytes=limit,
                path_token=path_token,
                query_token=request.query_params.get("token", ""),
                authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            ),
        )
        headers = challenge_headers(flow) if status == 401 else None
        return Response(payload, status=status, headers=headers)
