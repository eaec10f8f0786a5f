"""Celery tasks of the AmoCRM app."""
