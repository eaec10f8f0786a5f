from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncConfig(AppConfig):
    name = "integrations.sync"
    label = "sync"
    verbose_name = _("Sync")

    def ready(self):
        from integrations.amocrm.signals import account_connected
        from integrations.sync.receivers import resume_on_connect

        account_connected.connect(resume_on_connect, dispatch_uid="sync-resume-on-connect")
