"""The address admin login failures are counted against (django-axes).

Behind nginx every request comes from nginx's address, so the caller's is taken from
``X-Forwarded-For``, but only when the peer is a trusted proxy: anyone else could write
any address there and escape the lockout.
"""

from integrations.sync.intake_auth import request_client_address


def login_address(request) -> str:
    """The caller's address, taken as the intake takes it (``HUB_TRUSTED_PROXIES``)."""
    return request_client_address(request.META) or ""


def login_client_str(username, ip_address, user_agent, path_info, request) -> str:
    """How axes names a client in its log lines: by path only, never a name or address."""
    return f"{{path_info: {path_info!r}}}"
