"""Celery tasks of the pipeline: thin, they take ids and call the delivery services."""

from celery import shared_task

from integrations.sync.delivery import event_deliver, events_sweep


@shared_task(name="integrations.sync.tasks.deliver_event", ignore_result=True)
def deliver_event(event_id: int) -> str | None:
    """Delivers one event; retries are scheduled by the service, not by Celery."""
    return event_deliver(event_id=event_id)


@shared_task(name="integrations.sync.tasks.sweep_stuck_events", ignore_result=True)
def sweep_stuck_events() -> int:
    """Re-enqueues events whose delivery message was lost (run by beat)."""
    return events_sweep()
