"""The delivery pipeline's records, one module per job: flows (with their mappings),
events (with their attempts and batch calls), and the audit of people's actions."""

from integrations.sync.models.audit import PersonalDataAccess, Replay
from integrations.sync.models.events import (
    AccountDrain,
    BatchCall,
    DeliveryAttempt,
    EventStatus,
    InboundEvent,
    LeadAlias,
)
from integrations.sync.models.flows import (
    CLOSED_STATUS_IDS,
    UNSORTED_STATUS_TYPE,
    BookingStatus,
    FieldMapping,
    Flow,
    FlowKind,
    FlowStatusMapping,
    stage_errors,
)

__all__ = [
    "CLOSED_STATUS_IDS",
    "UNSORTED_STATUS_TYPE",
    "AccountDrain",
    "BatchCall",
    "BookingStatus",
    "DeliveryAttempt",
    "EventStatus",
    "FieldMapping",
    "Flow",
    "FlowKind",
    "FlowStatusMapping",
    "InboundEvent",
    "LeadAlias",
    "PersonalDataAccess",
    "Replay",
    "stage_errors",
]
