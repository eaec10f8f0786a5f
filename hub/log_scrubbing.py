"""Secrets that travel in URLs, kept out of every log: the OAuth code, the intake tokens.

AmoCRM's OAuth callback brings ``?code=...&state=...``; RDESK may carry its intake token
as ``?token=...`` or as one path segment after the flow's path (``/zdrav/booked/<token>``).
gunicorn's access log (hub/gunicorn_logging.py) and the hub's own log lines
(hub/logging.py: Django's request errors name the path) use these; nginx's access log
follows the same rules (nginx/*.template).
"""

import re

SCRUBBED = "***"
# Query parameters whose values are secrets.
SECRET_PARAMS = ("code", "state", "token", "access_token", "refresh_token", "client_secret")
# The intake's paths: a segment after /zdrav/<flow>/ is a token.
INTAKE_PREFIX = "/zdrav/"

# A parameter, plain or percent-encoded inside another one (the admin's login redirect
# carries the callback's whole query in ``next=``); its value ends at the next separator.
_PARAM = re.compile(
    r"(?i)(^|[?&;]|%3F|%26|%3B)(" + "|".join(SECRET_PARAMS) + r")(=|%3D)"
    r"(?:(?!%26|%3B)[^&;#\s])*"
)
_INTAKE_TOKEN = re.compile(r"^(" + re.escape(INTAKE_PREFIX) + r"[^/?#\s]+/)[^?#\s]+")
# A flow moved off /zdrav/: its token is still a last segment as long as the hub makes
# them (secrets.token_urlsafe(32): 43 characters); no other path of the hub has one.
_LONG_SEGMENT = re.compile(r"/[A-Za-z0-9_-]{32,}$")
# Where a path starts in a log message ("Internal Server Error: /zdrav/booked/...").
_PATH_IN_TEXT = re.compile(r"/[^\s\"']*")


def uri_scrub(uri: str) -> str:
    """The path and query with token-bearing values replaced by ``***``."""
    if not uri:
        return uri
    path, mark, query = uri.partition("?")
    path = _INTAKE_TOKEN.sub(lambda m: m.group(1) + SCRUBBED, path)
    path = _LONG_SEGMENT.sub("/" + SCRUBBED, path)
    return path + mark + query_scrub(query)


def query_scrub(query: str) -> str:
    """The query with the secret parameters' values replaced by ``***``."""
    return _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{SCRUBBED}", query or "")


def text_scrub(text: str) -> str:
    """``text`` (a log message) with every path in it scrubbed as ``uri_scrub`` does."""
    return _PATH_IN_TEXT.sub(lambda m: uri_scrub(m.group(0)), text)
