"""The intake's OpenAPI description (drf-spectacular), for whoever points RDESK at the hub.

The intake is one plain view behind a catch-all route, serving whatever paths the flows
name, which no schema generator can see. ``intake_endpoints``, a spectacular
preprocessing hook, puts in its place one documented endpoint per flow (and its token
variant), described by the flow kind's serializer; the documenting views serve nothing.
"""

import re

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from integrations.rdesk.schemas import LeadIdField, VisitDateField
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.models import Flow

# The ways a flow may let RDESK in (the schemes are in SPECTACULAR_SETTINGS); {} stands
# for a flow its admin left open, as the old service was. A token in the path is the
# ``{token}`` variant of each path.
_AUTH = [{"tokenQuery": []}, {"basicAuth": []}, {}]


# The RDESK schemas' own fields, described here rather than in integrations/rdesk, which
# knows nothing of spectacular. Spectacular finds extensions by subclassing; this module
# is imported (as the hook below) before any schema is built.


class LeadIdFieldDescription(OpenApiSerializerFieldExtension):
    target_class = LeadIdField

    def map_serializer_field(self, auto_schema, direction):
        return {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\s*\d+\s*$"},
            ],
            "description": "The AmoCRM lead id, a number or a string of digits.",
        }


class VisitDateFieldDescription(OpenApiSerializerFieldExtension):
    target_class = VisitDateField

    def map_serializer_field(self, auto_schema, direction):
        return {
            **build_basic_type(OpenApiTypes.STR),
            "nullable": True,
            "description": "A date (YYYY-MM-DD) or an ISO 8601 date and time.",
        }


class OkAnswer(serializers.Serializer):
    status = serializers.CharField(help_text='Always "ok".')


class ErrorAnswer(serializers.Serializer):
    status = serializers.CharField(help_text='Always "error".')
    error = serializers.CharField(
        help_text="What is wrong, e.g. malformed_json, not_an_object, empty_batch, "
        "body_too_large, too_many_items, unsupported_media_type, invalid_items."
    )
    detail = serializers.CharField(help_text="One English sentence explaining it.")


class ItemErrors(serializers.Serializer):
    index = serializers.IntegerField(help_text="The item's position in the posted array.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field path (e.g. billData.0.billSum) -> what is wrong with it.",
    )


class InvalidItemsAnswer(ErrorAnswer):
    items = ItemErrors(many=True)


_RESPONSES = {
    200: OpenApiResponse(OkAnswer, description="Stored; delivery to AmoCRM follows."),
    400: OpenApiResponse(ErrorAnswer, description="Not JSON, or not objects; stored rejected."),
    401: OpenApiResponse(ErrorAnswer, description="No or wrong credentials; stored rejected."),
    403: OpenApiResponse(ErrorAnswer, description="Address not allowed; stored rejected."),
    404: OpenApiResponse(ErrorAnswer, description="No flow serves this path."),
    413: OpenApiResponse(ErrorAnswer, description="Body or item count over the limit."),
    415: OpenApiResponse(ErrorAnswer, description="Content-Type is not JSON."),
    422: OpenApiResponse(
        InvalidItemsAnswer,
        description="Some item does not fit the schema; nothing accepted, stored rejected.",
    ),
    500: OpenApiResponse(
        ErrorAnswer, description="The hub could not store the request (not_stored): send it again."
    ),
}


def _documenting_view(flow: Flow, *, token_in_path: bool):
    kind = flow.kind
    spec = FLOW_KINDS[kind]
    name = re.sub(r"\W+", "_", flow.endpoint_path).strip("_")
    parameters = []
    if token_in_path:
        parameters.append(
            OpenApiParameter(
                "token", str, OpenApiParameter.PATH, description="The flow's secret token."
            )
        )

    class IntakeDocumentation(APIView):
        authentication_classes = []
        permission_classes = [AllowAny]
        parser_classes = [JSONParser]

        @extend_schema(
            operation_id=f"post_{name}{'_with_token' if token_in_path else ''}",
            summary=f"{flow.name}: post items",
            description=(
                f"{(spec.schema.__doc__ or '').strip().replace('``', '')} The body is a JSON "
                "array of items "
                "(as RDESK sends) or one item. The request is accepted or refused whole, and "
                "stored either way."
            ),
            tags=["intake"],
            request=spec.schema(many=True),
            responses=_RESPONSES,
            parameters=parameters,
            auth=_AUTH,
        )
        def post(self, request, *args, **kwargs):
            raise NotImplementedError("documentation only; the intake is views.IntakeView")

    return IntakeDocumentation.as_view()


def intake_endpoints(endpoints):
    """Spectacular preprocessing hook: the flows' intake endpoints instead of ``endpoints``."""
    documented = []
    for flow in Flow.objects.order_by("endpoint_path"):
        path = flow.endpoint_path
        documented.append(
            (path, f"^{re.escape(path)}$", "POST", _documenting_view(flow, token_in_path=False))
        )
        documented.append(
            (
                f"{path}/{{token}}",
                f"^{re.escape(path)}/(?P<token>[^/]+)$",
                "POST",
                _documenting_view(flow, token_in_path=True),
            )
        )
    return documented
