"""The OAuth consent round trip: the authorization link with a fresh state, and its check.

The state is kept in the admin's session (as healthchecks does) together with the
account it is for, so the callback knows which account is being connected and a
forged or replayed callback is refused.
"""

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.utils.translation import gettext

from integrations.amocrm.models import Account

SESSION_KEY = "amocrm_oauth"
# AmoCRM's authorization codes live 20 minutes; a state older than that is useless.
STATE_LIFETIME = 20 * 60

# https://www.amocrm.ru/developers/content/oauth/step-by-step (Kommo: same path on kommo.com)
AMOCRM_CONSENT_URL = "https://www.amocrm.ru/oauth"
KOMMO_CONSENT_URL = "https://www.kommo.com/oauth"


class StateMismatch(Exception):
    """The callback's state is not one this hub issued to this browser (or it expired)."""


@dataclass(frozen=True)
class PendingConnection:
    account_id: int
    state: str


def consent_url_base(account: Account) -> str:
    """Where the admin grants access: AmoCRM's or Kommo's page, or the server's own."""
    host = urlsplit(account.api_base_url).hostname or ""
    if host.endswith(".amocrm.ru"):
        return AMOCRM_CONSENT_URL
    if host.endswith((".kommo.com", ".amocrm.com")):
        return KOMMO_CONSENT_URL
    return f"{account.api_base_url}/oauth"  # an AmoCRM-compatible server, e.g. the emulator


def authorization_url(*, account: Account, session) -> str:
    """A consent link with a fresh state remembered in ``session``."""
    state = secrets.token_urlsafe(24)
    session[SESSION_KEY] = {"state": state, "account_id": account.pk, "issued": time.time()}
    # AmoCRM's own link (reference 1.1), built by hand: it carries no secret, and
    # oauthlib would refuse an AmoCRM-compatible server without TLS (the emulator).
    params = {"client_id": account.client_id, "state": state, "mode": "popup"}
    return f"{consent_url_base(account)}?{urlencode(params)}"


def pending_connection(*, session, state: str) -> PendingConnection:
    """The connection the state was issued for; raises ``StateMismatch``. Single use."""
    pending = session.pop(SESSION_KEY, None)
    if not pending or not state:
        raise StateMismatch(gettext("No connection was started from this browser, or it was used."))
    if not secrets.compare_digest(str(pending["state"]), state):
        raise StateMismatch(gettext("The state does not match the one this hub issued."))
    if time.time() - pending["issued"] > STATE_LIFETIME:
        raise StateMismatch(gettext("The connection was started more than 20 minutes ago."))
    return PendingConnection(account_id=pending["account_id"], state=state)
