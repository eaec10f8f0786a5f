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


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def metrics_files_archive(pid=None, **kwargs) -> None:
    """A stopping worker process's counts go into the archive (monitoring/metrics.py)."""
    from integrations.monitoring.metrics import process_files_archive

    process_files_archive(pid)
