"""The sync app's admin: flows and mappings, and the audit trail (one module each)."""

from integrations.sync.admin import events, flows

__all__ = ["events", "flows"]
