from django.apps import AppConfig


class AmocrmConfig(AppConfig):
    name = "integrations.amocrm"
    label = "amocrm"
    verbose_name = "AmoCRM"
