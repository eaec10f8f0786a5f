"""Each flow kind's schema and transform: a new kind is a new entry here, not a new pipeline."""

from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils.functional import Promise
from rest_framework import serializers

from integrations.rdesk import schemas, transforms
from integrations.sync.models import FlowKind


@dataclass(frozen=True)
class FlowKindSpec:
    """How a kind's payload is validated and which named values it produces."""

    schema: type[serializers.Serializer]
    values: Callable[..., dict]
    sources: dict[str, Promise]  # name -> label, translated when shown
    field_types: dict[str, str]
    # The named value holding a booking status, for moving the lead between stages;
    # None for kinds that have no such status.
    status_source: str | None = None

    def values_for(self, data: dict, *, tz: ZoneInfo) -> dict:
        return self.values(data, tz=tz)


FLOW_KINDS: dict[str, FlowKindSpec] = {
    FlowKind.BOOKED: FlowKindSpec(
        schema=schemas.BookingSerializer,
        values=lambda data, tz: transforms.booked_values(data),
        sources=transforms.BOOKED_SOURCES,
        field_types=transforms.BOOKED_FIELD_TYPES,
        status_source="status",
    ),
    FlowKind.MC: FlowKindSpec(
        schema=schemas.MedicalCentreSerializer,
        values=transforms.mc_values,
        sources=transforms.MC_SOURCES,
        field_types=transforms.MC_FIELD_TYPES,
    ),
}
