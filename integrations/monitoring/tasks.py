"""Celery tasks of monitoring: thin, they call the alert and catalogue services."""

from celery import shared_task

from integrations.monitoring.alerts import alerts_evaluate
from integrations.monitoring.catalogue_checks import catalogues_check
from integrations.monitoring.single_run import ALERTS_LOCK, run_alone


# Runs every minute: a run that waited longer than that in the queue is superseded by
# the next one, so it is dropped rather than run late.
@shared_task(name="integrations.monitoring.tasks.evaluate_alerts", ignore_result=True, expires=55)
def evaluate_alerts() -> dict[str, int]:
    """Opens and resolves incidents and sends the alerts owed (beat, every minute)."""
    with run_alone(ALERTS_LOCK) as alone:
        if not alone:
            return {"skipped": 1}
        run = alerts_evaluate()
    return {"opened": run.opened, "resolved": run.resolved, "sent": run.sent, "failed": run.failed}


@shared_task(name="integrations.monitoring.tasks.check_mappings", ignore_result=True)
def check_mappings() -> dict[str, int]:
    """Fetches the live catalogues and finds mappings to vanished fields (beat, daily)."""
    return catalogues_check()
