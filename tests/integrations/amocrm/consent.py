"""The OAuth consent round trip as an admin's browser makes it, against the emulator."""

import socket
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from integrations.amocrm.oauth import SESSION_KEY

TIMEOUT = 5


def connect_start(client, account) -> str:
    """Presses "Connect to AmoCRM": the consent URL the hub sends the browser to."""
    response = client.get(f"/amocrm/oauth/start/{account.pk}/")
    assert response.status_code == 302, response
    return response["Location"]


def consent_answer(consent_url: str, *, deny: bool = False) -> str:
    """Allows (or denies) access on the emulator's consent page: the callback path it sends."""
    url = consent_url + ("&deny=1" if deny else "")
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["Location"])
    return f"{parts.path}?{parts.query}"


def connect(client, account, *, deny: bool = False):
    """The whole round trip: Connect, consent, and the callback page it ends on."""
    return client.get(consent_answer(connect_start(client, account), deny=deny))


def issued_state(client) -> str:
    """The state the hub remembered in the admin's session for the pending connection."""
    return client.session[SESSION_KEY]["state"]


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def with_query(path: str, **changes) -> str:
    """The callback path with some parameters replaced (None removes one)."""
    parts = urlsplit(path)
    params = {**dict(parse_qsl(parts.query)), **changes}
    return f"{parts.path}?{urlencode({k: v for k, v in params.items() if v is not None})}"


def closed_url() -> str:
    """An address where nothing listens: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
