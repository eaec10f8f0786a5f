"""OAuth pages: the admin's Connect button and the redirect URI AmoCRM sends the code to.

Both need ``amocrm.connect_account``: whoever may only look at an account must not be
able to start a connection or finish one (a finished exchange repoints the account).
"""

import logging
from urllib.parse import urlsplit

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from integrations.amocrm import client as amocrm
from integrations.amocrm.models import Account
from integrations.amocrm.oauth import StateMismatch, authorization_url, pending_connection
from integrations.amocrm.services import account_connect_with_code

logger = logging.getLogger(__name__)

# AmoCRM's hint -> what the admin should understand and do.
_HINTS = [
    ("has expired", _("The authorization code has expired (codes live 20 minutes).")),
    ("has been revoked", _("This authorization code was already used.")),
    ("cannot decrypt", _("AmoCRM did not recognise the authorization code.")),
    ("client_secret", _("AmoCRM rejected the client secret: check the account's secret key.")),
    ("client_id", _("AmoCRM rejected the integration ID: check the account's client ID.")),
    ("redirect uri", _("The redirect URI does not match the integration's redirect link.")),
    ("invalid account", _("The account's address does not match the AmoCRM account.")),
]
CONNECT_PERMISSION = "amocrm.connect_account"


def _explain(error: amocrm.AmoCRMError) -> str:
    if isinstance(error, amocrm.Unavailable):
        if error.status is None:  # no answer at all: refused, timed out, no route
            cause = type(error.__cause__ or error).__name__
            return gettext(
                "AmoCRM could not be reached (%(cause)s). Try again in a few minutes."
            ) % {"cause": cause}
        return gettext("AmoCRM is unavailable (%(detail)s). Try again in a few minutes.") % {
            "detail": error.detail
        }
    text = f"{getattr(error, 'hint', '')} {error.detail}".lower()
    for needle, explanation in _HINTS:
        if needle in text:
            return str(explanation)
    return gettext("AmoCRM refused the connection: %(detail)s") % {"detail": error.detail}


def _page(request, *, status: int, title: str, message: str, account=None, ok=False):
    context = {
        **admin.site.each_context(request),
        "title": title,
        "message": message,
        "account": account,
        "ok": ok,
    }
    return render(request, "amocrm/oauth_callback.html", context, status=status)


@staff_member_required
@permission_required(CONNECT_PERMISSION, raise_exception=True)
def oauth_start(request, account_id: int):
    """Sends the admin to AmoCRM's consent page with a fresh state."""
    account = get_object_or_404(Account, pk=account_id)
    return redirect(authorization_url(account=account, session=request.session))


@require_GET
@staff_member_required
@permission_required(CONNECT_PERMISSION, raise_exception=True)
def oauth_callback(request):
    """The redirect URI: checks state and client_id, exchanges the code, says what happened.

    Without the right it answers 403 before reading the state or exchanging the code.
    """
    params = request.GET
    try:
        pending = pending_connection(session=request.session, state=params.get("state", ""))
    except StateMismatch as error:
        if params.get("error"):
            return _access_refused(request, account=None)
        return _page(
            request,
            status=400,
            title=gettext("Connection refused: state mismatch"),
            message=gettext("%(problem)s Start again with the Connect button on the account.")
            % {"problem": error},
        )
    account = Account.objects.filter(pk=pending.account_id).first()
    if account is None:
        return _page(
            request,
            status=400,
            title=gettext("Unknown account"),
            message=gettext("It was deleted."),
        )
    if params.get("error"):
        return _access_refused(request, account=account)
    client_id = params.get("client_id")
    if client_id and client_id != account.client_id:
        return _page(
            request,
            status=400,
            title=gettext("Connection refused: wrong integration"),
            message=gettext(
                "The callback is for integration %(callback)s, but account '%(account)s' "
                "uses integration %(client_id)s."
            )
            % {"callback": client_id, "account": account, "client_id": account.client_id},
            account=account,
        )
    code = params.get("code", "")
    if not code:
        return _page(
            request,
            status=400,
            title=gettext("Connection failed: no code"),
            message=gettext("AmoCRM sent no authorization code."),
            account=account,
        )
    _adopt_referer(account, params.get("referer", ""))
    try:
        account_connect_with_code(account=account, code=code)
    except amocrm.AmoCRMError as error:
        logger.warning(
            "oauth callback failed",
            extra={"account": account.pk, "error_class": type(error).__name__},
        )
        return _page(
            request,
            status=502 if isinstance(error, amocrm.Unavailable) else 400,
            title=gettext("Connection failed"),
            message=_explain(error),
            account=account,
        )
    return _page(
        request,
        status=200,
        title=gettext("Connected to AmoCRM"),
        message=gettext("Account '%(account)s' at %(url)s is connected.")
        % {"account": account, "url": account.api_base_url},
        account=account,
        ok=True,
    )


def _access_refused(request, *, account):
    return _page(
        request,
        status=400,
        title=gettext("Access was refused"),
        message=gettext(
            "Access was not granted in AmoCRM, so nothing changed. Press Connect on the "
            "account and choose Allow to connect it."
        ),
        account=account,
    )


def _adopt_referer(account: Account, referer: str) -> None:
    """AmoCRM says which host the account lives on; trust it for amocrm/kommo hosts."""
    host = referer.split(":")[0].lower()
    if account.base_url or not host.endswith((".amocrm.ru", ".kommo.com", ".amocrm.com")):
        return
    if host != urlsplit(account.api_base_url).hostname:
        account.base_url = f"https://{host}"
        account.save(update_fields=["base_url", "updated_at"])
