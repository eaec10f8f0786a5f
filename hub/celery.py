"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Explicit wiring: each app's tasks module is named here rather than discovered.
app.conf.imports = (
    "integrations.sync.tasks",
    "integrations.amocrm.tasks",
    "integrations.monitoring.tasks",
)


@signals.task_prerun.connect
@signals.task_postrun.connect
def database_connections_tidy(task=None, **kwargs) -> None:
    """Between tasks, as between web requests: a connection past ``CONN_MAX_AGE`` or left
    unusable by an error is closed, a healthy one kept (``CELERY_DB_REUSE_MAX``)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run inline by its caller, whose transaction may still be open
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def metrics_files_archive(pid=None, **kwargs) -> None:
    """A stopping worker process's counts go into the archive (monitoring/metrics.py)."""
    from integrations.monitoring.metrics import process_files_archive

    process_files_archive(pid)
