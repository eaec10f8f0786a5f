"""The amo-hub Django project."""

from hub.celery import app as celery_app

__all__ = ["celery_app"]
