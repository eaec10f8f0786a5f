"""Who gets in and how often: Bearer auth on /api/v4, the 7-per-second budget, routing."""

import time

import pytest

from integrations.amocrm.emulator.server import EmulatorServer

from .conftest import Api

UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "https://httpstatus.es/401",
    "status": 401,
    "detail": "Неверный логин или пароль",
}


@pytest.fixture
def rate_limited():
    """An emulator with the default budget of 7 requests per second."""
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def limited_api(rate_limited):
    return Api(rate_limited.base_url, rate_limited.state.issue_token()["access_token"])


@pytest.mark.parametrize("authorization", [None, "Bearer unknown-token", "Basic abc"])
def test_api_without_a_valid_token_is_401(emulator, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = Api(emulator.base_url).get("/api/v4/account", headers=headers)

    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json() == UNAUTHORIZED


def test_api_with_an_expired_token_is_401(emulator, api):
    emulator.state.expire_access_tokens()

    response = api.get("/api/v4/account")

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert emulator.state.counters["unauthorized"] == 1


def test_token_lifetime_is_configurable():
    with EmulatorServer(rate_limit=0, access_token_lifetime=0) as emulator:
        pair = emulator.state.issue_token()

        response = Api(emulator.base_url, pair["access_token"]).get("/api/v4/account")

    assert pair["expires_in"] == 0
    assert response.status_code == 401


def test_long_lived_token_never_expires(emulator):
    pair = emulator.state.issue_token(long_lived=True)
    emulator.state.expire_access_tokens()

    response = Api(emulator.base_url, pair["access_token"]).get("/api/v4/account")

    assert pair["refresh_token"] is None
    assert response.status_code == 200


def test_preset_access_token_works_and_survives_reset():
    with EmulatorServer(rate_limit=0, access_token="demo-token") as emulator:
        emulator.state.reset()

        response = Api(emulator.base_url, "demo-token").get("/api/v4/account")

    assert response.status_code == 200


def test_more_than_7_requests_in_a_second_get_429(rate_limited, limited_api):
    statuses = [limited_api.get("/api/v4/account").status_code for _ in range(8)]

    assert statuses == [200] * 7 + [429]
    assert rate_limited.state.counters["rate_limited"] == 1


def test_429_has_kommos_body_and_is_logged(rate_limited, limited_api):
    for _ in range(7):
        limited_api.get("/api/v4/account")

    response = limited_api.get("/api/v4/leads")

    assert response.status_code == 429
    body = response.json()
    assert body["title"] == "Too Many Requests"
    assert body["type"] == "https://httpstatus.es/429"
    assert body["status"] == 429
    assert body["detail"].startswith("You have sent too many requests")
    assert body["retry_after"] == 1
    assert rate_limited.state.requests[-1]["status"] == 429
    assert rate_limited.state.requests[-1]["path"] == "/api/v4/leads"


def test_token_endpoint_shares_the_budget(limited_api):
    for _ in range(7):
        limited_api.get("/api/v4/account")

    response = limited_api.post("/oauth2/access_token", json={})

    assert response.status_code == 429


def test_budget_returns_once_the_window_has_passed(limited_api):
    for _ in range(8):
        limited_api.get("/api/v4/account")

    time.sleep(1.05)

    assert limited_api.get("/api/v4/account").status_code == 200


def test_control_endpoints_and_consent_are_not_limited(limited_api):
    for _ in range(8):
        limited_api.get("/api/v4/account")

    assert limited_api.get("/_emulator/counters").status_code == 200
    assert limited_api.get("/oauth", params={"client_id": "emulator-client"}).status_code == 302


def test_zero_rate_limit_disables_the_limit(emulator, api):
    statuses = {api.get("/api/v4/account").status_code for _ in range(12)}

    assert statuses == {200}


def test_requests_are_logged_with_method_path_query_status_time_and_body(emulator, api):
    api.patch("/api/v4/leads/23392663", json={"price": 1}, params={"x": "1"})

    entry = emulator.state.requests[-1]
    assert entry["method"] == "PATCH"
    assert entry["path"] == "/api/v4/leads/23392663"
    assert entry["query"] == {"x": ["1"]}
    assert entry["status"] == 200
    assert entry["body"] == {"price": 1}
    assert entry["time"] <= time.monotonic()


def test_unknown_route_is_404_problem(api):
    response = api.get("/api/v4/contacts/unknown")

    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


def test_wrong_method_is_405(api):
    response = api.request("DELETE", "/api/v4/leads/23392663")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PATCH"
