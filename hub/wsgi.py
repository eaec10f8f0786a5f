"""WSGI entry point for gunicorn: the intake's paths through a lean middleware chain.

RDESK's webhooks need none of what the admin does per request (sessions, the user, the
language cookie, login throttling, the account's time zone read from the database, messages, the
change history), and at the intake's rate that work was a large part of each request. Paths
under ``HUB_LEAN_PATHS`` (default ``/zdrav/``, where the flows live) are served by a
handler built with ``settings.MIDDLEWARE`` minus those; everything else by Django's own.
Both resolve URLs the same way, so a flow path moved elsewhere still works, only through
the full chain. ``HUB_LEAN_PATHS=`` (empty) turns this off.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

# What the intake's paths do without: they serve no browser and no person.
NOT_FOR_INTAKE = {
    "django.contrib.sessions.middleware.SessionMiddleware",
    "hub.middleware.HubLocaleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Login throttling: nobody logs in through the intake.
    "axes.middleware.AxesMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "hub.middleware.AccountTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}


class LeanHandler(WSGIHandler):
    """Django's handler with ``settings.MIDDLEWARE`` minus ``NOT_FOR_INTAKE``."""

    def load_middleware(self, is_async=False):
        from django.conf import settings

        full = settings.MIDDLEWARE
        # Read once, at start-up, in one thread: the full list is put straight back.
        settings.MIDDLEWARE = [m for m in full if m not in NOT_FOR_INTAKE]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def _dispatcher(full, lean, prefixes: tuple[str, ...]):
    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(prefixes):
            return lean(environ, start_response)
        return full(environ, start_response)

    return application


def application_build():
    """The hub's WSGI application (lean intake paths when ``HUB_LEAN_PATHS`` names any)."""
    full = get_wsgi_application()  # sets Django up
    from django.conf import settings

    prefixes = tuple(settings.HUB_LEAN_PATHS)
    if not prefixes:
        return full
    return _dispatcher(full, LeanHandler(), prefixes)


application = application_build()
