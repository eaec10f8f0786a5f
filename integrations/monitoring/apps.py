from contextlib import suppress
from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "integrations.monitoring"
    label = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self):
        # Every process writes its counters here (prometheus-client's multiprocess mode);
        # the directory must exist before the first one is counted. A directory that
        # cannot be made is reported by the system check.
        with suppress(OSError):
            Path(settings.PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

        from integrations.monitoring.checks import monitoring_settings_check

        checks.register(monitoring_settings_check)
