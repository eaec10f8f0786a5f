"""URL configuration: admin, the AmoCRM OAuth callback, health and metrics, the intake's
OpenAPI description, and the RDESK intake endpoints."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

import hub.admin_site  # noqa: F401  (sets the admin site up before its URLs are built)
from integrations.sync.admin.preview import preview_urls

urlpatterns = [
    # The hub has no front page of its own: people come for the admin.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="root"),
    # admin.site.urls, with the preview pages ahead of the ModelAdmins' catch-all object
    # URLs (see integrations/sync/admin/preview.py).
    # Under HUB_ADMIN_PATH (default admin/), so the admin may live at a path of its own.
    path(
        settings.HUB_ADMIN_PATH,
        (preview_urls(admin.site) + admin.site.get_urls(), "admin", admin.site.name),
    ),
    path("amocrm/", include("integrations.amocrm.urls")),
    # The admin's language switch (Django's set_language view).
    path("i18n/", include("django.conf.urls.i18n")),
    # Health (/healthz, /readyz) and metrics (/metrics), ahead of the intake's paths.
    path("", include("integrations.monitoring.urls")),
    # The intake's OpenAPI description (staff only; also `manage.py spectacular`).
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    # Last: intake endpoints are whatever paths the flows name (e.g. /zdrav/booked).
    path("", include("integrations.sync.urls")),
]
