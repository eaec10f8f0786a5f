"""AccountTokens: which token is sent, and refreshing it once, under the row lock."""

import threading
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.utils import timezone

from integrations.amocrm.client import Unauthorized
from integrations.amocrm.models import Account, Token
from integrations.amocrm.tokens import AccountTokens
from tests.factories import AccountFactory, TokenFactory

TOKEN_URL = "https://clinic.amocrm.ru/oauth2/access_token"
NEW_PAIR = {
    "token_type": "Bearer",
    "expires_in": 86400,
    "access_token": "new-access-token",
    "refresh_token": "new-refresh-token",
}
REVOKED = {
    "hint": "Token has been revoked",
    "title": "Unauthorized",
    "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
    "status": 401,
    "detail": "Авторизация клиента не прошла",
}


def seen_by_another_connection(read):
    """What ``read()`` returns on a fresh database connection: committed data only."""
    result = {}

    def run():
        try:
            result["value"] = read()
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result["value"]


def expiring_token(account, *, in_seconds: float, **fields) -> Token:
    token = Token.objects.get(account=account)
    token.expires_at = timezone.now() + timedelta(seconds=in_seconds)
    for name, value in fields.items():
        setattr(token, name, value)
    token.save()
    return token


def test_fresh_token_is_used_as_it_is(account, amocrm_http):
    assert AccountTokens(account).access_token() == "live-access-token"

    assert len(amocrm_http.calls) == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_token_near_expiry_is_refreshed_and_the_new_pair_committed(account, amocrm_http, settings):
    settings.AMOCRM_REFRESH_MARGIN = 300.0
    expiring_token(account, in_seconds=60, refresh_token="current-refresh-token")
    amocrm_http.post(TOKEN_URL, json=NEW_PAIR)

    assert AccountTokens(account).access_token() == "new-access-token"

    committed = seen_by_another_connection(
        lambda: Token.objects.values_list("access_token", "refresh_token").get(account=account)
    )
    assert committed == ("new-access-token", "new-refresh-token")
    sent = parse_qs(amocrm_http.calls[0].request.body)
    assert (sent["grant_type"], sent["refresh_token"]) == (
        ["refresh_token"],
        ["current-refresh-token"],
    )
    token = Token.objects.get(account=account)
    assert (token.access_token, token.refresh_token) == ("new-access-token", "new-refresh-token")
    assert 86000 < (token.expires_at - timezone.now()).total_seconds() <= 86400
    assert abs((timezone.now() - token.refreshed_at).total_seconds()) < 5


def test_token_outside_the_margin_is_not_refreshed(account, amocrm_http, settings):
    settings.AMOCRM_REFRESH_MARGIN = 300.0
    expiring_token(account, in_seconds=600)

    assert AccountTokens(account).access_token() == "live-access-token"

    assert len(amocrm_http.calls) == 0


def test_expired_token_is_refreshed_before_use(account, amocrm_http):
    expiring_token(account, in_seconds=-3600)
    amocrm_http.post(TOKEN_URL, json=NEW_PAIR)

    assert AccountTokens(account).access_token() == "new-access-token"


def test_long_lived_token_is_used_even_when_the_oauth_pair_has_expired(account, amocrm_http):
    account.long_lived_token = "long-lived-token"
    account.save()
    expiring_token(account, in_seconds=-3600)

    assert AccountTokens(account).access_token() == "long-lived-token"

    assert len(amocrm_http.calls) == 0


def test_long_lived_token_is_never_refreshed(db, amocrm_http):
    account = AccountFactory(long_lived_token="long-lived-token")

    assert AccountTokens(account).refreshed_token(rejected="long-lived-token") is None

    assert len(amocrm_http.calls) == 0


def test_refreshed_token_with_a_stale_token_returns_the_already_refreshed_one(account, amocrm_http):
    expiring_token(account, in_seconds=86400, access_token="refreshed-by-another-worker")

    fresh = AccountTokens(account).refreshed_token(rejected="live-access-token")

    assert fresh == "refreshed-by-another-worker"
    assert len(amocrm_http.calls) == 0


def test_refreshed_token_for_the_current_token_spends_the_refresh_token(account, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=NEW_PAIR)

    assert AccountTokens(account).refreshed_token(rejected="live-access-token") == (
        "new-access-token"
    )
    assert Token.objects.get(account=account).access_token == "new-access-token"


def test_refresh_without_a_new_refresh_token_keeps_the_old_one(account, amocrm_http):
    expiring_token(account, in_seconds=0, refresh_token="kept-refresh-token")
    amocrm_http.post(TOKEN_URL, json={"access_token": "new-access-token", "expires_in": 3600})

    AccountTokens(account).access_token()

    assert Token.objects.get(account=account).refresh_token == "kept-refresh-token"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_refused_refresh_disconnects_the_account_with_the_reason_and_raises(account, amocrm_http):
    expiring_token(account, in_seconds=0, refresh_token="spent-refresh-token")
    amocrm_http.post(TOKEN_URL, status=401, json=REVOKED)

    with pytest.raises(Unauthorized) as raised:
        AccountTokens(account).access_token()

    assert "Token has been revoked" in raised.value.detail
    stored = seen_by_another_connection(lambda: Account.objects.get(pk=account.pk))
    assert stored.state == Account.State.DISCONNECTED
    assert stored.state_reason == (
        "Refresh refused: Unauthorized: Авторизация клиента не прошла (Token has been revoked)"
    )
    token = Token.objects.get(account=account)
    assert (token.access_token, token.refresh_token) == ("live-access-token", "spent-refresh-token")


def test_refresh_that_cannot_reach_amocrm_keeps_the_account_connected(account, amocrm_http):
    from integrations.amocrm.client import Unavailable

    expiring_token(account, in_seconds=0)
    amocrm_http.post(TOKEN_URL, status=503, body="down")

    with pytest.raises(Unavailable):
        AccountTokens(account).access_token()

    account.refresh_from_db()
    assert account.state == Account.State.CONNECTED
    assert Token.objects.get(account=account).access_token == "live-access-token"


def test_account_without_a_token_is_unauthorized(db, amocrm_http):
    account = AccountFactory()

    with pytest.raises(Unauthorized, match="has no token: connect it first"):
        AccountTokens(account).access_token()


def test_token_without_a_refresh_token_cannot_be_refreshed(db, amocrm_http):
    account = AccountFactory()
    TokenFactory(account=account, access_token="only-access", refresh_token="")

    with pytest.raises(Unauthorized, match="has no refresh token"):
        AccountTokens(account).refreshed_token(rejected="only-access")

    assert len(amocrm_http.calls) == 0
