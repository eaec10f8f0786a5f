"""Turns the old service's AMO_* variables into the AmoCRM account, once; safe to rerun.

Also takes the old service's ``--mocked-lead-id`` flag (or ``MOCKED_LEAD_ID=1``), which
turns mock lead id mode on for every flow.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, ngettext

from integrations.amocrm.client import AmoCRMError
from integrations.amocrm.models import Token
from integrations.amocrm.services import account_connect_with_code, account_from_env
from integrations.sync.models import Flow


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language; argparse cannot
        # take a lazy string.
        return gettext(
            "Create the AmoCRM account from AMO_SUBDOMAIN, AMO_CLIENT_ID, AMO_CLIENT_SECRET, "
            "AMO_REDIRECT_URL and AMO_BASE_URL (idempotent), attach it to flows without an "
            "account, and exchange AMO_AUTH_CODE when the account has no token yet."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--mocked-lead-id",
            action="store_true",
            help=gettext(
                "Turn mock lead id mode on for every flow (as the old service's flag did); "
                "MOCKED_LEAD_ID=1 does the same."
            ),
        )

    def handle(self, *args, mocked_lead_id=False, **options):
        if mocked_lead_id or settings.MOCKED_LEAD_ID:
            self._mock_mode_on()
        if not (settings.AMO_SUBDOMAIN or settings.AMO_BASE_URL):
            self.stdout.write(
                gettext("AMO_SUBDOMAIN and AMO_BASE_URL are unset: nothing to bootstrap.")
            )
            return
        try:
            account, created = account_from_env(
                subdomain=settings.AMO_SUBDOMAIN,
                client_id=settings.AMO_CLIENT_ID,
                client_secret=settings.AMO_CLIENT_SECRET,
                redirect_uri=settings.AMO_REDIRECT_URL,
                base_url=settings.AMO_BASE_URL,
                long_lived_token=settings.AMO_LONG_LIVED_TOKEN,
                timezone_name=settings.AMO_TIMEZONE,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        found = {"account": account, "url": account.api_base_url}
        if created:
            self.stdout.write(gettext("Created account '%(account)s' (%(url)s).") % found)
        else:
            self.stdout.write(gettext("Found account '%(account)s' (%(url)s).") % found)
        attached = Flow.objects.filter(account__isnull=True).update(account=account)
        if attached:
            self.stdout.write(
                ngettext(
                    "Attached %(count)d flow(s) to it.",
                    "Attached %(count)d flow(s) to it.",
                    attached,
                )
                % {"count": attached}
            )
        has_token = Token.objects.filter(account=account).exists()
        if settings.AMO_AUTH_CODE and not has_token and not account.long_lived_token:
            try:
                account_connect_with_code(account=account, code=settings.AMO_AUTH_CODE)
            except AmoCRMError as error:
                # Not fatal: the hub still stores webhooks; an admin connects it later.
                self.stderr.write(
                    gettext("AMO_AUTH_CODE could not be exchanged: %(detail)s")
                    % {"detail": error.detail}
                )
            else:
                self.stdout.write(gettext("Exchanged AMO_AUTH_CODE: the account is connected."))

    def _mock_mode_on(self) -> None:
        # Every start with the flag turns it on again, as the old service's flag meant;
        # switching it off in the admin lasts once the flag is no longer passed.
        switched = Flow.objects.filter(mock_lead_id=False).update(mock_lead_id=True)
        if switched:
            self.stdout.write(
                ngettext(
                    "Mock lead id mode turned on for %(count)d flow(s).",
                    "Mock lead id mode turned on for %(count)d flow(s).",
                    switched,
                )
                % {"count": switched}
            )
        else:
            self.stdout.write(gettext("Mock lead id mode is on for every flow."))
