"""The daily look at AmoCRM's live catalogue: have mapped fields vanished?

Each connected account that flows deliver to has its fields fetched again (the existing
``catalogue_refresh``), then ``mapping_checks`` says which mappings point at a field that
is gone; the alert itself is raised by the next alert run, like every other problem.
"""

import logging

from integrations.amocrm.client import AmoCRMError
from integrations.amocrm.models import Account
from integrations.amocrm.ratelimit import SlotTimeout
from integrations.amocrm.services import catalogue_refresh
from integrations.sync.mapping_checks import mappings_missing_field

logger = logging.getLogger(__name__)


def catalogues_check() -> dict[str, int]:
    """Refreshes the catalogues of accounts in use; counts of refreshed, failed, missing."""
    counts = {"refreshed": 0, "failed": 0, "missing": 0}
    accounts = Account.objects.filter(state=Account.State.CONNECTED, flows__isnull=False).distinct()
    for account in accounts:
        try:
            catalogue_refresh(account=account)
        except (AmoCRMError, SlotTimeout) as error:
            counts["failed"] += 1
            logger.warning(
                "catalogue refresh failed",
                extra={"account": account.pk, "error_class": type(error).__name__},
            )
        else:
            counts["refreshed"] += 1
    counts["missing"] = mappings_missing_field().count()
    if counts["missing"]:
        logger.warning("mappings point at missing fields", extra={"count": counts["missing"]})
    return counts
