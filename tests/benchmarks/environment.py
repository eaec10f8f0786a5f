"""What every benchmark sets before Django starts: the production mode, on this machine."""

import os
import secrets

from cryptography.fernet import Fernet


def bench_environment(run: str, *, broker: str = "redis://127.0.0.1:6379/11") -> None:
    """Settings for a benchmark run: its own database and Redis keys, quiet logs.

    A PostgreSQL URL is the production mode, which needs its secrets (processes the
    benchmark starts inherit them); the requests go over plain HTTP.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("HUB_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("HUB_HTTPS", "false")
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/amohub_{run}")
    os.environ.setdefault("CELERY_BROKER_URL", broker)
    os.environ.setdefault("HUB_REDIS_PREFIX", f"amohub-{run}:")
