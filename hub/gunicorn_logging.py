"""gunicorn's access log without secrets: the OAuth code and the intake tokens scrubbed.

AmoCRM's OAuth callback brings ``?code=...&state=...``; RDESK may carry its intake token
as ``?token=...`` or as one path segment after the flow's path (``/zdrav/booked/<token>``).
gunicorn writes the request line, path, query and Referer as they came: this logger
replaces those values before the line is formatted. nginx's access log follows the same
rules (nginx/*.template: ``$amohub_scrubbed_uri``).
"""

import re

from gunicorn.glogging import Logger

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


def uri_scrub(uri: str) -> str:
    """The path and query with token-bearing values replaced by ``***``."""
    if not uri:
        return uri
    path, mark, query = uri.partition("?")
    path = _INTAKE_TOKEN.sub(lambda m: m.group(1) + SCRUBBED, path)
    return path + mark + query_scrub(query)


def query_scrub(query: str) -> str:
    """The query with the secret parameters' values replaced by ``***``."""
    return _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{SCRUBBED}", query or "")


class ScrubbingLogger(Logger):
    """gunicorn's logger with the request line, path, query and Referer scrubbed."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method, protocol = environ.get("REQUEST_METHOD", "-"), environ.get("SERVER_PROTOCOL")
        atoms["r"] = f"{method} {uri_scrub(environ.get('RAW_URI', ''))} {protocol}"
        atoms["U"] = uri_scrub(environ.get("PATH_INFO") or "")
        atoms["q"] = query_scrub(environ.get("QUERY_STRING") or "")
        for key in ("f", "{referer}i"):
            if key in atoms and atoms[key] not in (None, "-"):
                atoms[key] = _referer_scrub(atoms[key])
        return atoms


def _referer_scrub(referer: str) -> str:
    scheme, sep, rest = referer.partition("://")
    if not sep:
        return uri_scrub(referer)
    host, slash, tail = rest.partition("/")
    return f"{scheme}://{host}" + (uri_scrub(slash + tail) if slash else "")
