"""URL configuration: admin, the AmoCRM OAuth callback, and the RDESK intake endpoints."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "amo-hub administration"
admin.site.site_title = "amo-hub"
admin.site.index_title = "RDESK to AmoCRM"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("amocrm/", include("integrations.amocrm.urls")),
    # The admin's language switch (Django's set_language view).
    path("i18n/", include("django.conf.urls.i18n")),
    # Last: intake endpoints are whatever paths the flows name (e.g. /zdrav/booked).
    path("", include("integrations.sync.urls")),
]
