"""Language and time zone of each request: Russian and the account's zone unless chosen.

Django's LocaleMiddleware follows the browser's Accept-Language; the hub instead speaks
Russian to everyone until a person picks another language in the admin (a cookie), so a
sanatorium's shared workstation with an English browser still shows the Russian admin.
"""

from django.conf import settings
from django.utils import timezone, translation


class HubLocaleMiddleware:
    """Activates the language from the language cookie, else ``settings.LANGUAGE_CODE``."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen in self.languages else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        translation.deactivate()
        return response


# Health probes and metrics show no dates and must answer with the database down.
UNZONED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AccountTimezoneMiddleware:
    """Shows dates in the AmoCRM account's zone (Europe/Moscow by default).

    The hub serves one sanatorium: the first account's zone is everyone's; without an
    account the project's TIME_ZONE applies.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from integrations.amocrm.models import Account

        if request.path in UNZONED_PATHS:
            return self.get_response(request)
        zone = Account.objects.order_by("pk").values_list("timezone", flat=True).first()
        try:
            timezone.activate(zone or settings.TIME_ZONE)
        except (ValueError, LookupError):  # an unknown zone typed into the account
            timezone.activate(settings.TIME_ZONE)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
