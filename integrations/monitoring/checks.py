"""System checks: what monitoring needs from the settings (run by ``manage.py check``)."""

import os

from django.conf import settings
from django.core.checks import Error, Warning


def monitoring_settings_check(app_configs=None, **kwargs) -> list:
    problems = []
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        problems.append(
            Error(
                f"PROMETHEUS_MULTIPROC_DIR ({directory}) is not a writable directory.",
                hint="Create it, shared by the web and worker containers, or set another.",
                id="monitoring.E001",
            )
        )
    if bool(settings.HUB_TELEGRAM_BOT_TOKEN) != bool(settings.HUB_TELEGRAM_CHAT_ID):
        problems.append(
            Warning(
                "Only one of HUB_TELEGRAM_BOT_TOKEN and HUB_TELEGRAM_CHAT_ID is set: the "
                "environment's Telegram channel needs both and is off.",
                id="monitoring.W001",
            )
        )
    return problems
