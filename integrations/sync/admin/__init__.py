"""The sync app's admin: flows and mappings, and the audit trail (one module each)."""

from integrations.sync.admin import batch_calls, events, flows

__all__ = ["batch_calls", "events", "flows"]
