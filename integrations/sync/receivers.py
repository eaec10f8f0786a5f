"""Reactions of the pipeline to AmoCRM-side signals (connected in SyncConfig.ready)."""

from integrations.sync.delivery import events_resume


def resume_on_connect(sender, *, account_id: int, **kwargs) -> None:
    """A reconnected account sends what waited for it."""
    events_resume(account_id=account_id)
