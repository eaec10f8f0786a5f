"""Re-encrypts every stored secret with the first key of HUB_ENCRYPTION_KEYS.

After putting a new key first: run this, then the old keys can be removed from the list.
Safe to rerun: rows already under the first key are left alone.
"""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext

from hub.encryption import encrypted_fields, model_secrets_rotate


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return gettext(
            "Re-encrypt the stored secrets (client secrets, tokens) with the first key of "
            "HUB_ENCRYPTION_KEYS; afterwards the other keys can be removed."
        )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=100,
            help=gettext("Rows locked and rewritten per transaction."),
        )

    def handle(self, *args, batch_size=100, **options):
        for model, names in encrypted_fields().items():
            rotated, current = model_secrets_rotate(model, names, batch_size=batch_size)
            self.stdout.write(
                gettext("%(model)s: %(rotated)d re-encrypted, %(current)d already current")
                % {"model": model._meta.label, "rotated": rotated, "current": current}
            )
