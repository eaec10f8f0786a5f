"""bootstrap_from_env: AMO_* variables become the account, once; --mocked-lead-id mock mode."""

from io import StringIO
from urllib.parse import parse_qs

import pytest
from django.core.management import call_command

from integrations.amocrm.models import Account, Token
from integrations.sync.models import Flow
from tests.conftest import fixture_json
from tests.factories import AccountFactory

TOKEN_URL = "https://zdravnitsa.amocrm.ru/oauth2/access_token"
PAIR = fixture_json("amocrm/token-pair.json")


@pytest.fixture
def amo_env(settings, db):
    """The old service's variables as an existing .env would set them."""
    settings.AMO_SUBDOMAIN = "zdravnitsa"
    settings.AMO_CLIENT_ID = "legacy-client-id"
    settings.AMO_CLIENT_SECRET = "legacy-client-secret"
    settings.AMO_REDIRECT_URL = "https://hub.example.ru/amocrm/oauth/callback/"
    settings.AMO_BASE_URL = ""
    settings.AMO_LONG_LIVED_TOKEN = ""
    settings.AMO_AUTH_CODE = ""
    settings.AMO_TIMEZONE = "Asia/Yekaterinburg"
    settings.MOCKED_LEAD_ID = False
    return settings


def bootstrap() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("bootstrap_from_env", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_account_is_created_from_the_amo_variables(amo_env, amocrm_http):
    output, _ = bootstrap()

    account = Account.objects.get()
    assert account.name == "zdravnitsa"
    assert account.subdomain == "zdravnitsa"
    assert account.api_base_url == "https://zdravnitsa.amocrm.ru"
    assert account.client_id == "legacy-client-id"
    assert account.client_secret == "legacy-client-secret"
    assert account.redirect_uri == "https://hub.example.ru/amocrm/oauth/callback/"
    assert account.timezone == "Asia/Yekaterinburg"
    assert account.state == Account.State.DISCONNECTED
    assert "Created account 'zdravnitsa' (https://zdravnitsa.amocrm.ru)." in output


def test_flows_without_an_account_are_attached_to_it(amo_env, amocrm_http):
    output, _ = bootstrap()

    account = Account.objects.get()
    assert set(Flow.objects.values_list("account", flat=True)) == {account.pk}
    assert "Attached 2 flow(s) to it." in output


def test_flow_already_attached_elsewhere_is_left_alone(amo_env, amocrm_http):
    other = AccountFactory(name="other")
    Flow.objects.filter(kind="mc").update(account=other)

    bootstrap()

    assert Flow.objects.get(kind="mc").account == other
    assert Flow.objects.get(kind="booked").account.name == "zdravnitsa"


def test_second_run_changes_nothing(amo_env, amocrm_http):
    bootstrap()
    before = list(Account.objects.values())

    output, _ = bootstrap()

    assert list(Account.objects.values()) == before
    assert "Found account 'zdravnitsa'" in output
    assert "Attached" not in output


def test_second_run_does_not_overwrite_admin_edits(amo_env, amocrm_http):
    bootstrap()
    Account.objects.update(
        name="Zdravnitsa (edited)",
        client_secret="rotated-in-admin",
        redirect_uri="https://new.example.ru/cb/",
        timezone="Europe/Moscow",
    )

    bootstrap()

    account = Account.objects.get()
    assert account.name == "Zdravnitsa (edited)"
    assert account.client_secret == "rotated-in-admin"
    assert account.redirect_uri == "https://new.example.ru/cb/"
    assert account.timezone == "Europe/Moscow"


def test_base_url_alone_creates_the_account_on_that_server(amo_env, amocrm_http):
    amo_env.AMO_SUBDOMAIN = ""
    amo_env.AMO_BASE_URL = "https://zdravnitsa.kommo.com"

    bootstrap()
    bootstrap()

    account = Account.objects.get()
    assert (account.name, account.api_base_url) == (
        "https://zdravnitsa.kommo.com",
        "https://zdravnitsa.kommo.com",
    )


def test_long_lived_token_connects_the_account_without_an_exchange(amo_env, amocrm_http):
    amo_env.AMO_LONG_LIVED_TOKEN = "long-lived-token"
    amo_env.AMO_AUTH_CODE = "auth-code"

    bootstrap()

    account = Account.objects.get()
    assert account.long_lived_token == "long-lived-token"
    assert account.state == Account.State.CONNECTED
    assert len(amocrm_http.calls) == 0


def test_auth_code_is_exchanged_when_there_is_no_token(amo_env, amocrm_http):
    amo_env.AMO_AUTH_CODE = "auth-code"
    amocrm_http.post(TOKEN_URL, json=PAIR)

    output, _ = bootstrap()

    sent = parse_qs(amocrm_http.calls[0].request.body)
    assert sent["code"] == ["auth-code"]
    assert sent["client_secret"] == ["legacy-client-secret"]
    account = Account.objects.get()
    assert Token.objects.get(account=account).access_token == "issued-access-token"
    assert account.state == Account.State.CONNECTED
    assert "Exchanged AMO_AUTH_CODE: the account is connected." in output


def test_auth_code_is_exchanged_only_once(amo_env, amocrm_http):
    amo_env.AMO_AUTH_CODE = "auth-code"
    amocrm_http.post(TOKEN_URL, json=PAIR)

    bootstrap()
    output, _ = bootstrap()

    assert len(amocrm_http.calls) == 1
    assert "Exchanged" not in output


def test_refused_code_is_reported_without_failing(amo_env, amocrm_http):
    amo_env.AMO_AUTH_CODE = "stale-code"
    amocrm_http.post(
        TOKEN_URL,
        status=400,
        json={"title": "Некорректный запрос", "hint": "Authorization code has been revoked"},
    )

    _, errors = bootstrap()

    assert errors == (
        "AMO_AUTH_CODE could not be exchanged: "
        "Некорректный запрос (Authorization code has been revoked)\n"
    )
    account = Account.objects.get()
    assert account.state == Account.State.DISCONNECTED
    assert not Token.objects.exists()
    assert Flow.objects.filter(account=account).count() == 2


def test_unreachable_amocrm_is_reported_without_failing(amo_env, amocrm_http):
    import requests

    amo_env.AMO_AUTH_CODE = "auth-code"
    amocrm_http.post(TOKEN_URL, body=requests.ConnectionError("no route"))

    _, errors = bootstrap()

    assert errors == "AMO_AUTH_CODE could not be exchanged: AmoCRM unreachable: ConnectionError\n"
    assert Account.objects.count() == 1


def test_nothing_is_created_without_a_subdomain_or_base_url(amo_env, amocrm_http):
    amo_env.AMO_SUBDOMAIN = ""
    amo_env.AMO_BASE_URL = ""

    output, _ = bootstrap()

    assert output == "AMO_SUBDOMAIN and AMO_BASE_URL are unset: nothing to bootstrap.\n"
    assert not Account.objects.exists()
    assert not Flow.objects.filter(account__isnull=False).exists()


def test_subdomain_changed_in_the_admin_does_not_create_a_second_account(amo_env, amocrm_http):
    bootstrap()
    Account.objects.update(subdomain="zdravnitsa-new")

    output, _ = bootstrap()

    account = Account.objects.get()
    assert account.subdomain == "zdravnitsa-new"
    assert "Found account 'zdravnitsa'" in output


# --- the old service's --mocked-lead-id ------------------------------------------------


def bootstrap_with(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap_from_env", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def mock_modes() -> dict[str, bool]:
    return dict(Flow.objects.values_list("kind", "mock_lead_id"))


def test_mocked_lead_id_flag_turns_mock_mode_on_for_both_flows(amo_env, amocrm_http):
    output = bootstrap_with("--mocked-lead-id")

    assert mock_modes() == {"booked": True, "mc": True}
    assert "Mock lead id mode turned on for 2 flow(s)." in output


def test_mocked_lead_id_variable_does_what_the_flag_does(amo_env, amocrm_http):
    amo_env.MOCKED_LEAD_ID = True

    bootstrap_with()

    assert mock_modes() == {"booked": True, "mc": True}


def test_mocked_lead_id_flag_is_idempotent(amo_env, amocrm_http):
    bootstrap_with("--mocked-lead-id")

    output = bootstrap_with("--mocked-lead-id")

    assert mock_modes() == {"booked": True, "mc": True}
    assert "Mock lead id mode is on for every flow." in output


def test_mock_pipeline_and_status_seeded_from_the_old_variables_are_kept(amo_env, amocrm_http):
    Flow.objects.filter(kind="booked").update(mock_pipeline_id=10156066, mock_status_id=80453094)

    bootstrap_with("--mocked-lead-id")

    booked = Flow.objects.get(kind="booked")
    assert (booked.mock_pipeline_id, booked.mock_status_id) == (10156066, 80453094)


def test_mock_mode_is_left_as_it_is_without_the_flag(amo_env, amocrm_http):
    Flow.objects.filter(kind="mc").update(mock_lead_id=True)

    bootstrap_with()

    assert mock_modes() == {"booked": False, "mc": True}


def test_mocked_lead_id_flag_works_without_the_amo_variables(amo_env, amocrm_http):
    amo_env.AMO_SUBDOMAIN = ""
    amo_env.AMO_BASE_URL = ""

    bootstrap_with("--mocked-lead-id")

    assert mock_modes() == {"booked": True, "mc": True}
    assert not Account.objects.exists()
