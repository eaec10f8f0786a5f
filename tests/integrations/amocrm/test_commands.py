"""amo_connect: connect an account by hand with an authorization code or a long-lived token."""

from io import StringIO
from urllib.parse import parse_qs

import pytest
from django.core.management import CommandError, call_command

from integrations.amocrm.models import Account, Token
from tests.conftest import fixture_json
from tests.factories import AccountFactory

TOKEN_URL = "https://clinic.amocrm.ru/oauth2/access_token"
PAIR = fixture_json("amocrm/token-pair.json")


@pytest.fixture
def new_account(db) -> Account:
    """An account created from settings, not connected yet."""
    return AccountFactory(name="zdravnitsa", state=Account.State.DISCONNECTED)


def amo_connect(*args) -> str:
    out = StringIO()
    call_command("amo_connect", *args, stdout=out)
    return out.getvalue()


def test_code_is_exchanged_and_the_pair_stored(new_account, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=PAIR)

    output = amo_connect("--account", "zdravnitsa", "--code", "auth-code")

    assert output == "Account 'zdravnitsa' connected.\n"
    sent = parse_qs(amocrm_http.calls[0].request.body)
    assert (sent["grant_type"], sent["code"]) == (["authorization_code"], ["auth-code"])
    token = Token.objects.get(account=new_account)
    assert (token.access_token, token.refresh_token) == (
        "issued-access-token",
        "issued-refresh-token",
    )
    new_account.refresh_from_db()
    assert new_account.state == Account.State.CONNECTED


def test_the_only_account_is_used_when_none_is_named(new_account, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=PAIR)

    amo_connect("--code", "auth-code")

    assert Token.objects.filter(account=new_account).exists()


def test_refused_code_is_a_command_error_with_amocrms_reason(new_account, amocrm_http):
    amocrm_http.post(
        TOKEN_URL,
        status=400,
        json={"title": "Некорректный запрос", "hint": "Authorization code has expired"},
    )

    with pytest.raises(CommandError, match=r"AmoCRM refused the code: .*has expired"):
        amo_connect("--code", "old-code")

    assert not Token.objects.exists()
    new_account.refresh_from_db()
    assert new_account.state == Account.State.DISCONNECTED


def test_access_token_sets_the_long_lived_token_without_calling_amocrm(new_account, amocrm_http):
    output = amo_connect("--account", "zdravnitsa", "--access-token", "long-lived-token")

    assert output == "Account 'zdravnitsa' now uses the long-lived token.\n"
    new_account.refresh_from_db()
    assert new_account.long_lived_token == "long-lived-token"
    assert new_account.state == Account.State.CONNECTED
    assert len(amocrm_http.calls) == 0


def test_unknown_account_is_a_command_error(new_account, amocrm_http):
    with pytest.raises(CommandError, match=r"No account named 'elsewhere'\."):
        amo_connect("--account", "elsewhere", "--code", "auth-code")


def test_several_accounts_need_a_name(new_account, amocrm_http):
    AccountFactory()

    with pytest.raises(CommandError, match="Name the account with --account"):
        amo_connect("--access-token", "long-lived-token")


def test_no_account_at_all_is_a_command_error(db, amocrm_http):
    with pytest.raises(CommandError, match="Name the account with --account"):
        amo_connect("--code", "auth-code")


def test_code_or_token_is_required(new_account):
    with pytest.raises(CommandError, match="one of the arguments --code --access-token"):
        amo_connect("--account", "zdravnitsa")
