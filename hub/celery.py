"""The Celery application; configuration comes from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Explicit wiring: each app's tasks module is named here rather than discovered.
app.conf.imports = ("integrations.sync.tasks", "integrations.amocrm.tasks")
