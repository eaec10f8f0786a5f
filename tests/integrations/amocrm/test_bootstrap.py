"""The old service's AMO_AUTH_CODE still connects the account on first start (emulator)."""

from io import StringIO

import pytest
from django.core.management import call_command

from integrations.amocrm.models import Account, Token
from integrations.amocrm.services import connection_test


@pytest.fixture
def amo_env(settings, db, emulator):
    """The old service's .env, pointed at the emulator, with a fresh authorization code."""
    config = emulator.state.config
    settings.AMO_SUBDOMAIN = ""
    settings.AMO_BASE_URL = emulator.base_url
    settings.AMO_CLIENT_ID = config.client_id
    settings.AMO_CLIENT_SECRET = config.client_secret
    settings.AMO_REDIRECT_URL = config.redirect_uri
    settings.AMO_LONG_LIVED_TOKEN = ""
    settings.AMO_AUTH_CODE = emulator.state.issue_code()
    settings.AMO_TIMEZONE = "Europe/Moscow"
    return settings


def bootstrap() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("bootstrap_from_env", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_first_start_exchanges_amo_auth_code_for_a_working_pair(amo_env, emulator):
    output, errors = bootstrap()

    assert "Exchanged AMO_AUTH_CODE: the account is connected." in output
    assert errors == ""
    account = Account.objects.get()
    assert account.state == Account.State.CONNECTED
    assert emulator.state.counters["authorization_code"] == 1
    token = Token.objects.get(account=account)
    assert emulator.state.access_token_valid(token.access_token)
    assert connection_test(account=account)["name"] == "Здравница (emulator)"


def test_later_starts_do_not_spend_the_code_again(amo_env, emulator):
    bootstrap()
    first = Token.objects.get().access_token

    output, errors = bootstrap()

    assert "Exchanged" not in output
    assert errors == ""
    assert emulator.state.counters["authorization_code"] == 1
    assert emulator.state.counters["invalid_grant"] == 0
    assert Token.objects.get().access_token == first


def test_expired_amo_auth_code_is_reported_and_the_account_still_created(amo_env, emulator):
    emulator.state.age_codes(21 * 60)

    output, errors = bootstrap()

    assert f"Created account '{emulator.base_url}'" in output
    assert errors == (
        "AMO_AUTH_CODE could not be exchanged: Некорректный запрос: В запросе отсутствует "
        "ряд параметров или параметры невалидны (Authorization code has expired)\n"
    )
    account = Account.objects.get()
    assert account.state == Account.State.DISCONNECTED
    assert not Token.objects.exists()
