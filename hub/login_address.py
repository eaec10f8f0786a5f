"""The address admin login failures are counted against (django-axes).

Behind nginx every request comes from nginx's address, so the caller's is taken from
``X-Forwarded-For``, but only when the peer is a trusted proxy: anyone else could write
any address there and escape the lockout.
"""

import ipaddress

from django.conf import settings


def _trusted_proxy(peer: str) -> bool:
    if settings.HUB_TRUST_X_FORWARDED_FOR:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.HUB_LOGIN_TRUSTED_PROXIES
    )


def login_address(request) -> str:
    """The peer's address, or the one a trusted proxy forwarded (the last it added)."""
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and _trusted_proxy(peer):
        return forwarded.split(",")[-1].strip()
    return peer


def login_client_str(username, ip_address, user_agent, path_info, request) -> str:
    """How axes names a client in its log lines: by path only, never a name or address."""
    return f"{{path_info: {path_info!r}}}"
