from django.urls import path

from integrations.amocrm import views

app_name = "amocrm"
urlpatterns = [
    path("oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("oauth/start/<int:account_id>/", views.oauth_start, name="oauth-start"),
]
