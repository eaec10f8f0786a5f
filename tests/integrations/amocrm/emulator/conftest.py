"""Fixtures: a running emulator on a free port and an API session holding a valid token."""

import pytest
import requests

from integrations.amocrm.emulator.server import EmulatorServer

TIMEOUT = 5


class Api:
    """requests against the emulator, with its base URL and (optionally) a Bearer token."""

    def __init__(self, base_url: str, access_token: str | None = None):
        self.base_url = base_url
        self.session = requests.Session()
        if access_token:
            self.session.headers["Authorization"] = f"Bearer {access_token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)


@pytest.fixture
def emulator():
    """No rate limit: most tests fire requests faster than 7 per second."""
    with EmulatorServer(rate_limit=0) as server:
        yield server


@pytest.fixture
def api(emulator):
    return Api(emulator.base_url, emulator.state.issue_token()["access_token"])


@pytest.fixture
def anonymous(emulator):
    return Api(emulator.base_url)


@pytest.fixture
def token_form(emulator):
    """A valid authorization_code request body, without the code."""
    config = emulator.state.config
    return {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "grant_type": "authorization_code",
        "redirect_uri": config.redirect_uri,
    }
