"""OAuth: the consent redirect and the token endpoint's grants, refusals and rotation."""

from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.emulator.state import REFRESH_TOKEN_LIFETIME

from .conftest import Api

TOKEN_PATH = "/oauth2/access_token"
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def redirect_query(response):
    return {
        key: values[0]
        for key, values in parse_qs(urlsplit(response.headers["Location"]).query).items()
    }


def refresh_form(emulator, refresh_token):
    config = emulator.state.config
    return {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "redirect_uri": config.redirect_uri,
    }


def test_consent_redirects_to_the_redirect_uri_with_code_state_and_referer(emulator, anonymous):
    response = anonymous.get(
        "/oauth", params={"client_id": "emulator-client", "state": "csrf-1", "mode": "popup"}
    )

    assert response.status_code == 302
    assert response.headers["Location"].startswith(emulator.state.config.redirect_uri + "?")
    query = redirect_query(response)
    assert query["code"] in emulator.state.codes
    assert query["state"] == "csrf-1"
    assert query["referer"] == urlsplit(emulator.base_url).netloc
    assert query["platform"] == "1"
    assert query["client_id"] == "emulator-client"


def test_consent_without_state_does_not_echo_one(anonymous):
    response = anonymous.get("/oauth", params={"client_id": "emulator-client"})

    assert "state" not in redirect_query(response)


def test_denied_consent_redirects_with_access_denied_and_no_code(anonymous):
    response = anonymous.get(
        "/oauth", params={"client_id": "emulator-client", "state": "csrf-2", "deny": "1"}
    )

    assert response.status_code == 302
    assert redirect_query(response) == {
        "error": "access_denied",
        "state": "csrf-2",
        "client_id": "emulator-client",
    }


def test_consent_for_an_unknown_client_is_a_400_page(anonymous):
    response = anonymous.get("/oauth", params={"client_id": "someone-else"})

    assert response.status_code == 400
    assert "text/html" in response.headers["Content-Type"]


def test_code_exchange_returns_a_bearer_pair_that_opens_the_api(emulator, anonymous, token_form):
    response = anonymous.post(TOKEN_PATH, json={**token_form, "code": emulator.state.issue_code()})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["server_time"], int)
    assert body["refresh_token"]
    assert Api(emulator.base_url, body["access_token"]).get("/api/v4/account").status_code == 200
    assert emulator.state.counters["authorization_code"] == 1


def test_code_exchange_accepts_a_form_body(emulator, anonymous, token_form):
    response = anonymous.post(TOKEN_PATH, data={**token_form, "code": emulator.state.issue_code()})

    assert response.status_code == 200
    assert response.json()["access_token"]


def test_reused_code_has_been_revoked(emulator, anonymous, token_form):
    form = {**token_form, "code": emulator.state.issue_code()}
    anonymous.post(TOKEN_PATH, json=form)

    response = anonymous.post(TOKEN_PATH, json=form)

    assert response.status_code == 400
    assert response.json() == {
        "hint": "Authorization code has been revoked",
        "title": "Некорректный запрос",
        "type": OAUTH_PROBLEM_TYPE,
        "status": 400,
        "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
    }


def test_code_older_than_20_minutes_has_expired(emulator, anonymous, token_form):
    code = emulator.state.issue_code()
    emulator.state.age_codes(20 * 60 + 1)

    response = anonymous.post(TOKEN_PATH, json={**token_form, "code": code})

    assert response.status_code == 400
    assert response.json()["hint"] == "Authorization code has expired"


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        ({"code": "not-a-code"}, "Cannot decrypt the authorization code"),
        ({"client_id": "other"}, "Check the `client_id` parameter"),
        ({"client_secret": "wrong"}, "Check the `client_secret` parameter"),
        (
            {"redirect_uri": "https://elsewhere.example/cb"},
            "Redirect URI is not associated with client",
        ),
    ],
)
def test_refused_code_exchange_says_why(emulator, anonymous, token_form, change, hint):
    form = {**token_form, "code": emulator.state.issue_code(), **change}

    response = anonymous.post(TOKEN_PATH, json=form)

    assert response.status_code == 400
    assert response.json()["hint"] == hint
    assert response.json()["type"] == OAUTH_PROBLEM_TYPE
    assert emulator.state.counters["invalid_grant"] == 1


def test_refresh_returns_a_new_pair(emulator, anonymous):
    pair = emulator.state.issue_token()

    response = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, pair["refresh_token"]))

    assert response.status_code == 200
    fresh = response.json()
    assert fresh["access_token"] != pair["access_token"]
    assert fresh["refresh_token"] != pair["refresh_token"]
    assert Api(emulator.base_url, fresh["access_token"]).get("/api/v4/account").status_code == 200
    assert emulator.state.counters["refresh"] == 1


def test_spent_refresh_token_works_until_its_successor_is_used(emulator, anonymous):
    first = emulator.state.issue_token()["refresh_token"]
    second = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, first)).json()["refresh_token"]

    retry = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, first))
    anonymous.post(TOKEN_PATH, json=refresh_form(emulator, second))
    after_successor = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, first))

    assert retry.status_code == 200
    assert after_successor.status_code == 401
    assert after_successor.json()["hint"] == "Token has been revoked"


def test_strict_mode_revokes_a_spent_refresh_token_at_once():
    with EmulatorServer(rate_limit=0, strict_refresh=True) as emulator:
        anonymous = Api(emulator.base_url)
        spent = emulator.state.issue_token()["refresh_token"]
        anonymous.post(TOKEN_PATH, json=refresh_form(emulator, spent))

        response = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, spent))

    assert response.status_code == 401
    assert response.json()["hint"] == "Token has been revoked"
    assert emulator.state.counters["refresh"] == 1
    assert emulator.state.counters["invalid_grant"] == 1


def test_refresh_token_unused_for_3_months_is_revoked(emulator, anonymous):
    refresh_token = emulator.state.issue_token()["refresh_token"]
    emulator.state.age_refresh_tokens(REFRESH_TOKEN_LIFETIME + 1)

    response = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, refresh_token))

    assert response.status_code == 401
    assert response.json()["hint"] == "Token has been revoked"


def test_unknown_refresh_token_is_invalid(emulator, anonymous):
    response = anonymous.post(TOKEN_PATH, json=refresh_form(emulator, "def502garbage"))

    assert response.status_code == 400
    assert response.json()["hint"] == "Invalid refresh token"


def test_client_credentials_may_come_as_http_basic(emulator, anonymous, token_form):
    form = {"grant_type": "authorization_code", "code": emulator.state.issue_code()}
    form["redirect_uri"] = token_form["redirect_uri"]

    response = anonymous.post(
        TOKEN_PATH, data=form, auth=(token_form["client_id"], token_form["client_secret"])
    )

    assert response.status_code == 200
