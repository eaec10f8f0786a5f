from django.urls import path

app_name = "amocrm"
urlpatterns = []
