from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AmocrmConfig(AppConfig):
    name = "integrations.amocrm"
    label = "amocrm"
    verbose_name = _("AmoCRM")
