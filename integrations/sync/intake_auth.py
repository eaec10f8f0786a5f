"""Who may post to a flow: its token, its HTTP Basic credentials, its allowed addresses.

RDESK cannot sign requests, so a flow asks for what RDESK can send: a secret token in the
URL (``/zdrav/booked/<token>`` or ``?token=<token>``), credentials in the URL
(``https://user:password@host/zdrav/booked``, which arrive as an ``Authorization: Basic``
header), and an address on the flow's allow-list. When several are set, all must pass; a
flow with none set is open, as the old service was.

The hub makes tokens and passwords itself from 32 random bytes and keeps only their
SHA-256 digests. Such secrets cannot be guessed from a fast digest, and a slow password
hash would cost the intake its ~1,000 requests a second. Digests are compared in constant
time. The checks read only the flow and the request: they make no database query, so a
flow served from a cache is checked as cheaply.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

if TYPE_CHECKING:
    from integrations.sync.intake import IntakeRefused, IntakeRequest
    from integrations.sync.models import Flow

SECRET_BYTES = 32
BASIC_REALM = "amo-hub"
TOKEN_PLACEHOLDER = "<token>"
PASSWORD_PLACEHOLDER = "<password>"

# --- secrets --------------------------------------------------------------------------


def secret_generate() -> str:
    """A new token or password: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def password_digest(password: str, *, salt: str | None = None) -> str:
    """``salt$sha256(salt + password)``: the salt keeps equal passwords' digests apart."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}{password}".encode("utf-8", "replace")).hexdigest()
    return f"{salt}${digest}"


def _password_matches(password: str, digest: str) -> bool:
    salt, _, _ = digest.partition("$")
    return hmac.compare_digest(password_digest(password, salt=salt), digest)


def token_grace() -> timedelta:
    """How long a replaced token is still accepted (``HUB_INTAKE_TOKEN_GRACE``, seconds)."""
    return timedelta(seconds=settings.HUB_INTAKE_TOKEN_GRACE)


# --- addresses ------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_entries(text: str) -> list[str]:
    """The entries of an allow-list: one per line, blank lines and ``# comments`` left out."""
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


def networks_errors(text: str) -> list[str]:
    """What is wrong with an allow-list's entries, one message per bad entry."""
    errors = []
    for entry in network_entries(text):
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                message = gettext("“%(entry)s” is not an IPv4 or IPv6 address or network.")
                errors.append(message % {"entry": entry})
            else:
                message = gettext("“%(entry)s” has host bits set: did you mean %(network)s?")
                errors.append(message % {"entry": entry, "network": network})
    return errors


@lru_cache(maxsize=256)
def _allow_list(text: str) -> tuple[Network, ...] | None:
    """The networks of an allow-list, or None when it has no entries (any address)."""
    entries = network_entries(text)
    if not entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            # Flow.clean() refuses such entries; one written around it matches nothing, and
            # the list still counts as set: a broken list must not open the flow.
            continue
    return tuple(networks)


def _address(text: str) -> Address | None:
    try:
        # A zone (fe80::1%eth0) names an interface of the sender's, not an address of
        # the caller's, and PostgreSQL's inet type refuses it.
        address = ipaddress.ip_address(text.strip().partition("%")[0])
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket (::ffff:203.0.113.7) is that IPv4 client.
    return getattr(address, "ipv4_mapped", None) or address


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


# The same few peers and forwarded chains come again and again: parsed once each.
@lru_cache(maxsize=1024)
def client_address(
    peer: str | None, forwarded_for: str, *, proxies: tuple[Network, ...], trust_any: bool
) -> str | None:
    """The caller's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies it is the right-most ``X-Forwarded-For`` entry that is not one
    of them: entries further left were written by whoever called the first proxy and may
    be made up. ``trust_any`` takes every peer and every entry for a proxy, so the
    left-most entry wins (the deprecated ``HUB_TRUST_X_FORWARDED_FOR``). An entry that is
    not an address ends the walk at the proxy that passed it on.
    """
    address = _address(peer or "")
    if address is None:
        return None
    if trust_any or _within(address, proxies):
        for entry in reversed(forwarded_for.split(",") if forwarded_for else []):
            hop = _address(entry)
            if hop is None:
                break
            address = hop
            if not (trust_any or _within(address, proxies)):
                break
    return str(address)


def trusted_proxies() -> tuple[Network, ...]:
    """``HUB_TRUSTED_PROXIES`` as networks (``checks.py`` reports entries that are not)."""
    return _allow_list("\n".join(settings.HUB_TRUSTED_PROXIES)) or ()


def request_client_address(meta: Mapping) -> str | None:
    """The caller's address for a request's ``META``, by the hub's proxy settings."""
    return client_address(
        meta.get("REMOTE_ADDR"),
        meta.get("HTTP_X_FORWARDED_FOR", ""),
        proxies=trusted_proxies(),
        trust_any=settings.HUB_TRUST_X_FORWARDED_FOR,
    )


# --- paths ----------------------------------------------------------------------------


def path_flow(path: str, flows_by_path: Mapping[str, "Flow"]) -> tuple["Flow", str] | None:
    """The flow serving ``path`` and the token the path carries ("" for none), or None.

    A flow's own path wins; its path plus one segment is that flow's token form, served
    only to flows that have a token.
    """
    flow = flows_by_path.get(path)
    if flow is not None:
        return flow, ""
    parent, _, token = path.rpartition("/")
    flow = flows_by_path.get(parent) if token else None
    if flow is None or not flow.intake_token_digest:
        return None
    return flow, token


# --- the check ------------------------------------------------------------------------


def _refused(http_status: int, code: str, detail: str) -> "IntakeRefused":
    # Imported here: intake.py imports this module to call request_authenticate.
    from integrations.sync.intake import IntakeRefused

    return IntakeRefused(http_status, code, detail)


def _token_refusal(flow: "Flow", token: str, now: datetime) -> "IntakeRefused | None":
    digest = token_digest(token)
    if hmac.compare_digest(digest, flow.intake_token_digest):
        return None
    previous = flow.intake_previous_token_digest
    if previous and hmac.compare_digest(digest, previous):
        valid_until = flow.intake_previous_token_valid_until
        if valid_until is not None and now < valid_until:
            return None
        return _refused(
            401, "token_expired", "This token was replaced and its grace period is over."
        )
    return _refused(401, "token_invalid", "The token is not valid for this flow.")


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic`` value; None if malformed."""
    _, _, encoded = header.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    username, colon, password = text.partition(":")
    return (username, password) if colon else None


def _basic_refusal(flow: "Flow", header: str) -> "IntakeRefused | None":
    if header.partition(" ")[0].lower() != "basic":
        return _refused(
            401, "credentials_missing", "This flow requires HTTP Basic credentials in the URL."
        )
    credentials = _basic_credentials(header)
    if credentials is None:
        return _refused(
            401, "credentials_invalid", "The Authorization header is not valid HTTP Basic."
        )
    username, password = credentials
    # Both compared, whatever the first gives: the time taken says nothing about which.
    username_ok = hmac.compare_digest(
        username.encode("utf-8", "replace"), flow.intake_basic_username.encode()
    )
    password_ok = _password_matches(password, flow.intake_basic_password_digest)
    if username_ok and password_ok:
        return None
    return _refused(401, "credentials_invalid", "The HTTP Basic username or password is wrong.")


def request_authenticate(
    flow: "Flow", request: "IntakeRequest", *, now: datetime | None = None
) -> "IntakeRefused | None":
    """Why the request may not post to the flow (a 401 or 403 refusal), or None if it may.

    The address is judged first: a caller from elsewhere learns nothing about its
    credentials. Every token presented (path and query) must be valid.
    """
    allowed = _allow_list(flow.intake_allowed_networks)
    if allowed is not None:
        address = _address(request.remote_addr or "")
        if address is None or not _within(address, allowed):
            return _refused(
                403,
                "address_not_allowed",
                f"Address {address or 'unknown'} may not post to this flow.",
            )
    if flow.intake_token_digest:
        presented = [token for token in (request.path_token, request.query_token) if token]
        if not presented:
            return _refused(
                401,
                "token_missing",
                "This flow requires its token: post to its path followed by /<token>, "
                "or add ?token=<token>.",
            )
        for token in presented:
            refusal = _token_refusal(flow, token, now or timezone.now())
            if refusal is not None:
                return refusal
    if flow.intake_basic_password_digest:
        return _basic_refusal(flow, request.authorization)
    return None


def challenge_headers(flow: "Flow") -> dict[str, str]:
    """The headers of a 401 answer: the Basic challenge, when the flow asks for Basic."""
    if flow.intake_basic_password_digest:
        return {"WWW-Authenticate": f'Basic realm="{BASIC_REALM}"'}
    return {}


# --- issuing and removing -------------------------------------------------------------

_TOKEN_FIELDS = [
    "intake_token_digest",
    "intake_previous_token_digest",
    "intake_previous_token_valid_until",
    "updated_at",
]


@transaction.atomic
def flow_token_issue(*, flow: "Flow", now: datetime | None = None) -> str:
    """Gives the flow a new token and returns it (it is not kept anywhere).

    The token it had stays valid for ``HUB_INTAKE_TOKEN_GRACE``, so RDESK can be switched
    over without losing a request; a token replaced before that is refused at once.
    """
    locked = type(flow).objects.select_for_update().get(pk=flow.pk)
    token = secret_generate()
    if locked.intake_token_digest:
        locked.intake_previous_token_digest = locked.intake_token_digest
        locked.intake_previous_token_valid_until = (now or timezone.now()) + token_grace()
    locked.intake_token_digest = token_digest(token)
    locked.save(update_fields=_TOKEN_FIELDS)
    for name in _TOKEN_FIELDS:
        setattr(flow, name, getattr(locked, name))
    return token


def flow_token_remove(*, flow: "Flow") -> None:
    """The flow stops asking for a token; every token it had is refused from now on."""
    flow.intake_token_digest = ""
    flow.intake_previous_token_digest = ""
    flow.intake_previous_token_valid_until = None
    flow.save(update_fields=_TOKEN_FIELDS)


def flow_basic_issue(*, flow: "Flow") -> tuple[str, str]:
    """Gives the flow a new HTTP Basic password (and a username if it has none).

    Returns (username, password). The old password is refused at once.
    """
    username = flow.intake_basic_username or f"rdesk-{secrets.token_hex(4)}"
    password = secret_generate()
    flow.intake_basic_username = username
    flow.intake_basic_password_digest = password_digest(password)
    flow.save(update_fields=["intake_basic_username", "intake_basic_password_digest", "updated_at"])
    return username, password


def flow_basic_remove(*, flow: "Flow") -> None:
    """The flow stops asking for HTTP Basic credentials."""
    flow.intake_basic_password_digest = ""
    flow.save(update_fields=["intake_basic_password_digest", "updated_at"])


def intake_url(
    *, base: str, flow: "Flow", token: str = "", username: str = "", password: str = ""
) -> str:
    """The URL to give RDESK for the flow, with ``<token>``/``<password>`` for parts not known.

    ``base`` is the hub's public address (``https://hub.example.ru``).
    """
    parts = urlsplit(base.rstrip("/"))
    netloc = parts.netloc
    if flow.intake_basic_password_digest or password:
        user = username or flow.intake_basic_username
        netloc = f"{user}:{password or PASSWORD_PLACEHOLDER}@{netloc}"
    path = f"{parts.path}{flow.endpoint_path}"
    if flow.intake_token_digest or token:
        path = f"{path}/{token or TOKEN_PLACEHOLDER}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))
