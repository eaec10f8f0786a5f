"""From a stored payload to the lead update a flow would send: validate, transform, map.

Shared by delivery and by the admin's preview, so a preview shows exactly what a
delivery sends. No network: finding or creating the target lead is the caller's job.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from integrations.amocrm.models import CustomField
from integrations.rdesk.schemas import PayloadInvalid, payload_validate
from integrations.sync.kinds import FLOW_KINDS
from integrations.sync.leads import status_move_build
from integrations.sync.mapping import Mapping, MappingError, lead_update_build
from integrations.sync.models import EventStatus, Flow


class UpdateProblem(Exception):
    """The payload gives no update to send: ``status`` is how its event ends, and why."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PreparedUpdate:
    data: dict  # the validated payload
    values: dict  # the flow kind's named values
    update: dict  # the lead's PATCH body, without its id
    rdesk_lead_id: int


@dataclass(frozen=True)
class FlowSetup:
    """What a flow's updates are made with, read once for many payloads (a batch)."""

    computed: frozenset[int]  # field ids AmoCRM computes itself: never sent
    mappings: list[Mapping]
    stages: dict[str, dict]  # booking status -> {"pipeline_id", "status_id"}


def flow_setup(flow: Flow) -> FlowSetup:
    """The flow's current mappings, stage moves and the account's computed fields."""
    computed = frozenset(
        CustomField.objects.filter(account=flow.account, is_computed=True).values_list(
            "field_id", flat=True
        )
    )
    mappings = [
        Mapping(m.source, m.field_id, m.field_type) for m in flow.mappings.filter(enabled=True)
    ]
    stages = {
        m.booking_status: {"pipeline_id": m.pipeline_id, "status_id": m.status_id}
        for m in flow.status_mappings.all()
    }
    return FlowSetup(computed=computed, mappings=mappings, stages=stages)


def lead_update_prepare(*, flow: Flow, payload, setup: FlowSetup | None = None) -> PreparedUpdate:
    """The update ``flow`` makes of ``payload`` with its current mappings.

    ``setup`` (from ``flow_setup``) saves reading the flow again for each payload of a
    batch. Raises UpdateProblem when the payload is invalid, cannot be mapped, or fills
    nothing.
    """
    account = flow.account
    spec = FLOW_KINDS[flow.kind]
    try:
        data = payload_validate(spec.schema, payload)
    except PayloadInvalid as invalid:
        raise UpdateProblem(EventStatus.FAILED, f"Invalid payload: {invalid}") from invalid
    tz = ZoneInfo(account.timezone)
    setup = setup or flow_setup(flow)
    values = spec.values_for(data, tz=tz)
    try:
        update = lead_update_build(
            values=values,
            mappings=setup.mappings,
            price_source=flow.price_source,
            tz=tz,
            skip_field_ids=setup.computed,
        )
    except MappingError as error:
        raise UpdateProblem(EventStatus.FAILED, f"Cannot map the payload: {error}") from error
    update.update(status_move_build(flow=flow, values=values, stages=setup.stages))
    if not update:
        raise UpdateProblem(EventStatus.SKIPPED, "Nothing to send: no mapped value is filled.")
    return PreparedUpdate(data=data, values=values, update=update, rdesk_lead_id=data["lead_id"])
