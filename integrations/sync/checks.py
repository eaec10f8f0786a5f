"""System checks of the intake's security: open flows, and proxy settings that do not parse."""

from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.utils.translation import gettext

from integrations.sync.intake_auth import networks_errors


def open_flows_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A warning per flow that anyone who reaches its path may post to (``--deploy``)."""
    from integrations.sync.models import Flow

    try:
        flows = list(Flow.objects.order_by("endpoint_path"))
    except DatabaseError:
        # Not migrated yet (e.g. a check before the first migrate): nothing to judge.
        return []
    return [
        checks.Warning(
            gettext("Flow “%(flow)s” (%(path)s) accepts posts from anyone who can reach it.")
            % {"flow": flow.name, "path": flow.endpoint_path},
            hint=gettext(
                "In the admin (Sync → Flows → the flow → Intake security) generate a token, "
                "HTTP Basic credentials or list RDESK's addresses, then give RDESK the new URL."
            ),
            obj=flow,
            id="sync.W001",
        )
        for flow in flows
        if flow.intake_is_open
    ]


def trusted_proxies_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """An error for each ``HUB_TRUSTED_PROXIES`` entry that is not an address or network."""
    return [
        checks.Error(
            gettext("HUB_TRUSTED_PROXIES: %(problem)s") % {"problem": problem},
            hint=gettext("List CIDRs separated by commas, e.g. 172.16.0.0/12,10.0.0.0/8."),
            id="sync.E001",
        )
        for problem in networks_errors("\n".join(settings.HUB_TRUSTED_PROXIES))
    ]
