"""Connects an account by hand: exchange an authorization code, or set a long-lived token."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from integrations.amocrm.client import AmoCRMError
from integrations.amocrm.models import Account
from integrations.amocrm.services import account_connect_with_code, account_set_long_lived_token


class Command(BaseCommand):
    @property
    def help(self) -> str:
        # Read when the parser is built, so it speaks the active language; argparse cannot
        # take a lazy string.
        return gettext(
            "Connect an AmoCRM account with an authorization code or a long-lived token."
        )

    def add_arguments(self, parser):
        parser.add_argument("--account", help=gettext("Account name (default: the only account)."))
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--code", help=gettext("Authorization code to exchange (valid 20 minutes).")
        )
        source.add_argument(
            "--access-token", help=gettext("Long-lived token of a private integration.")
        )

    def handle(self, *args, account=None, code=None, access_token=None, **options):
        target = self._account(account)
        if access_token:
            account_set_long_lived_token(account=target, token=access_token)
            self.stdout.write(
                gettext("Account '%(account)s' now uses the long-lived token.")
                % {"account": target}
            )
            return
        try:
            account_connect_with_code(account=target, code=code)
        except AmoCRMError as error:
            raise CommandError(
                gettext("AmoCRM refused the code: %(detail)s") % {"detail": error.detail}
            ) from error
        self.stdout.write(gettext("Account '%(account)s' connected.") % {"account": target})

    @staticmethod
    def _account(name: str | None) -> Account:
        if name:
            try:
                return Account.objects.get(name=name)
            except Account.DoesNotExist as error:
                raise CommandError(
                    gettext("No account named '%(name)s'.") % {"name": name}
                ) from error
        accounts = list(Account.objects.all()[:2])
        if len(accounts) != 1:
            raise CommandError(
                gettext("Name the account with --account (there is not exactly one).")
            )
        return accounts[0]
