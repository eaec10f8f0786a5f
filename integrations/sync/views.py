"""The RDESK intake endpoint: one view serving every flow's path."""

from django.conf import settings
from django.http import Http404
from django.utils import translation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.sync.intake import IntakeRequest, request_receive
from integrations.sync.models import Flow


def _remote_addr(request) -> str | None:
    if settings.HUB_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


class IntakeView(APIView):
    """POST a JSON array of items (or one item) to a flow's path; answers {"status":"ok"}."""

    # RDESK does not sign or authenticate its calls; the body is read raw, not parsed here.
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = []

    def dispatch(self, request, *args, **kwargs):
        # RDESK reads the old service's English answers: DRF's own errors (405 for a GET,
        # 404) must not follow the admin's language into the contract.
        with translation.override("en"):
            response = super().dispatch(request, *args, **kwargs)
        response.headers["Content-Language"] = "en"
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        # A GET of a path no flow serves (a browser's /favicon.ico) is not found, as it was
        # on the old service; 405 is for a flow's own path.
        if not Flow.objects.filter(endpoint_path=f"/{kwargs.get('endpoint', '')}").exists():
            raise Http404("No flow serves this path.")
        return super().http_method_not_allowed(request, *args, **kwargs)

    def post(self, request, endpoint: str):
        try:
            flow = Flow.objects.get(endpoint_path=f"/{endpoint}")
        except Flow.DoesNotExist as error:
            raise Http404("No flow serves this path.") from error
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
                remote_addr=_remote_addr(request),
                max_bytes=limit,
            ),
        )
        return Response(payload, status=status)
