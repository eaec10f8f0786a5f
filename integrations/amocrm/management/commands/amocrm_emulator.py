"""``manage.py amocrm_emulator``: runs the local AmoCRM-compatible server (the demo's AmoCRM)."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext

from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.emulator.state import EmulatorConfig

DEFAULTS = EmulatorConfig()


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language; argparse cannot
        # take a lazy string.
        return gettext(
            "Runs the AmoCRM emulator (OAuth, leads, custom fields, pipelines) until interrupted."
        )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--client-id", default=DEFAULTS.client_id)
        parser.add_argument("--client-secret", default=DEFAULTS.client_secret)
        parser.add_argument("--redirect-uri", default=DEFAULTS.redirect_uri)
        parser.add_argument("--subdomain", default=DEFAULTS.subdomain)
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=DEFAULTS.rate_limit,
            help=gettext("Requests per second before 429; 0 disables the limit."),
        )
        parser.add_argument(
            "--strict-refresh",
            action="store_true",
            help=gettext("Revoke a refresh token as soon as it is spent (amoCRM wording)."),
        )
        parser.add_argument(
            "--access-token",
            help=gettext("Pre-register a long-lived access token with this value."),
        )

    def handle(self, *args, **options):
        server = EmulatorServer(
            options["host"],
            options["port"],
            client_id=options["client_id"],
            client_secret=options["client_secret"],
            redirect_uri=options["redirect_uri"],
            subdomain=options["subdomain"],
            rate_limit=options["rate_limit"],
            strict_refresh=options["strict_refresh"],
            access_token=options["access_token"],
            log_requests=options["verbosity"] > 1,
        )
        self.stdout.write(gettext("AmoCRM emulator at %(url)s") % {"url": server.base_url})
        self.stdout.write(f"  client_id={options['client_id']}  subdomain={options['subdomain']}")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write(gettext("Emulator stopped."))
