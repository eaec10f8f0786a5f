from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncConfig(AppConfig):
    name = "integrations.sync"
    label = "sync"
    verbose_name = _("Sync")

    def ready(self):
        from django.core import checks
        from django.db.models.signals import post_delete, post_save

        from integrations.amocrm.signals import account_connected
        from integrations.sync.checks import open_flows_check, trusted_proxies_check
        from integrations.sync.flow_routes import flow_routes_forget
        from integrations.sync.models import Flow
        from integrations.sync.receivers import resume_on_connect

        account_connected.connect(resume_on_connect, dispatch_uid="sync-resume-on-connect")
        # Open flows are a deployment's concern: reported by `manage.py check --deploy`.
        checks.register(open_flows_check, checks.Tags.security, deploy=True)
        checks.register(trusted_proxies_check, checks.Tags.security)
        # The intake's copy of the flows by path: an admin's change applies at once here.
        for signal in (post_save, post_delete):
            signal.connect(flow_routes_forget, sender=Flow, dispatch_uid="sync-flow-routes")
