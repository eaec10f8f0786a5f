"""Sends a test message to every alert channel (environment and admin) and says how each
went: the way to prove a channel works before it is needed."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from integrations.monitoring.channels import channels_configured, test_text


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return gettext("Send a test message to every alert channel; exit 1 if one fails.")

    def handle(self, *args, **options):
        channels = channels_configured()
        if not channels:
            raise CommandError(
                gettext("No alert channel: set HUB_ALERT_EMAILS or HUB_TELEGRAM_* or add one.")
            )
        failed = []
        for channel in channels:
            delivery = channel.send(test_text())
            if delivery.ok:
                self.stdout.write(gettext("%(channel)s: sent") % {"channel": channel.name})
            else:
                failed.append(channel.name)
                self.stdout.write(
                    gettext("%(channel)s: failed: %(error)s")
                    % {"channel": channel.name, "error": delivery.error}
                )
        if failed:
            raise CommandError(gettext("Failed: %(channels)s") % {"channels": ", ".join(failed)})
