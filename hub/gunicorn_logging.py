"""gunicorn's access log without secrets: the OAuth code and the intake tokens scrubbed.

AmoCRM's OAuth callback brings ``?code=...&state=...``; RDESK may carry its intake token
as ``?token=...`` or as one path segment after the flow's path (``/zdrav/booked/<token>``).
gunicorn writes the request line, path, query and Referer as they came: this logger
replaces those values before the line is formatted. nginx's access log follows the same
rules (nginx/*.template: ``$amohub_scrubbed_uri``).
"""

import functools
import os
import re

from gunicorn.glogging import Logger

from hub.log_scrubbing import query_scrub, uri_scrub

# The atoms gunicorn offers that come from the request line, the answer and the timing,
# as opposed to every header and environ variable ({name}i, {name}o, {name}e).
_LINE_ATOMS = frozenset("hlrsmUqHbBfaTDMLp")


class ScrubbingLogger(Logger):
    """gunicorn's logger with the request line, path, query and Referer scrubbed.

    When the format names only line atoms (the hub's does), only those are built: gunicorn
    would add an atom for every header and environ variable of every request, which cost
    the intake more than writing the line.
    """

    def atoms(self, resp, req, environ, request_time):
        if _line_atoms_only(self.cfg.access_log_format):
            atoms = _line_atoms(resp, environ, request_time)
        else:
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


@functools.lru_cache(maxsize=4)
def _line_atoms_only(access_log_format: str) -> bool:
    names = re.findall(r"%\((.*?)\)", access_log_format)
    return all(name in _LINE_ATOMS for name in names)


def _line_atoms(resp, environ, request_time) -> dict:
    """gunicorn's own values of the line atoms (``Logger.atoms``), and no others."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    sent = getattr(resp, "sent", None)
    seconds, microseconds = request_time.seconds, request_time.microseconds
    return {
        "h": environ.get("REMOTE_ADDR", "-"),
        "l": "-",
        "s": status,
        "m": environ.get("REQUEST_METHOD"),
        "H": environ.get("SERVER_PROTOCOL"),
        "b": str(sent) if sent is not None else "-",
        "B": sent,
        "f": environ.get("HTTP_REFERER", "-"),
        "a": environ.get("HTTP_USER_AGENT", "-"),
        "T": seconds,
        "D": seconds * 1000000 + microseconds,
        "M": seconds * 1000 + int(microseconds / 1000),
        "L": f"{seconds}.{microseconds:06d}",
        "p": f"<{os.getpid()}>",
    }
