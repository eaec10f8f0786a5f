"""Celery tasks of the pipeline: thin, they take ids and call the delivery services."""

from celery import shared_task

from integrations.sync.delivery import account_drain, event_deliver, events_sweep
from integrations.sync.outcomes import TRANSIENT_ERRORS, retry_delay
from integrations.sync.retention import events_prune


@shared_task(bind=True, name="integrations.sync.tasks.drain_account", ignore_result=True)
def drain_account(self, account_id: int | None) -> int:
    """Delivers the account's due events; retried with backoff while the hub's own
    database, Redis or broker is out (event retries are scheduled by the service)."""
    try:
        return len(account_drain(account_id=account_id))
    except TRANSIENT_ERRORS as error:
        raise self.retry(
            exc=error, countdown=retry_delay(self.request.retries + 1), max_retries=None
        ) from error


@shared_task(name="integrations.sync.tasks.deliver_event", ignore_result=True)
def deliver_event(event_id: int) -> str | None:
    """Messages sent before the per-account drain: drains that event's account."""
    return event_deliver(event_id=event_id)


@shared_task(name="integrations.sync.tasks.sweep_stuck_events", ignore_result=True)
def sweep_stuck_events() -> int:
    """Nudges accounts whose events' delivery message was lost (run by beat)."""
    return events_sweep()


@shared_task(name="integrations.sync.tasks.prune_events", ignore_result=True)
def prune_events() -> dict[str, int]:
    """Replaces old events' personal data by masked summaries (run by beat, daily)."""
    return events_prune()
