"""gunicorn's access log without secrets: the OAuth code and the intake tokens scrubbed.

AmoCRM's OAuth callback brings ``?code=...&state=...``; RDESK may carry its intake token
as ``?token=...`` or as one path segment after the flow's path (``/zdrav/booked/<token>``).
gunicorn writes the request line, path, query and Referer as they came: this logger
replaces those values before the line is formatted. nginx's access log follows the same
rules (nginx/*.template: ``$amohub_scrubbed_uri``).
"""

import functools
import logging
import os
import re
import traceback

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

    def access(self, resp, req, environ, request_time):
        """gunicorn's ``access``; the line written straight to the access log's streams
        when they are plain (gunicorn's own set-up), which is what logging would do
        with it, at a fraction of its cost per request."""
        if not self.access_log_enabled:
            return
        handlers = _plain_handlers(self.access_log)
        if handlers is None:
            return super().access(resp, req, environ, request_time)
        try:
            atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
            line = self.cfg.access_log_format % atoms
            for handler in handlers:
                with handler.lock:
                    handler.stream.write(line + handler.terminator)
                    handler.flush()
        except Exception:
            self.error(traceback.format_exc())

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


# Handlers whose record is the message alone, written to their stream: nothing else
# (a filter, another level, a formatter of another kind or format, syslog) would treat it
# otherwise.
_PLAIN_HANDLERS = (logging.StreamHandler, logging.FileHandler)


def _plain_handlers(log: logging.Logger) -> list[logging.Handler] | None:
    """The access log's handlers, if each would write just the line; else None."""
    if log.disabled or log.filters or log.propagate or not log.isEnabledFor(logging.INFO):
        return None
    for handler in log.handlers:
        if (
            type(handler) not in _PLAIN_HANDLERS
            or handler.filters
            or handler.level > logging.INFO
            or handler.stream is None
            or type(handler.formatter) is not logging.Formatter
            or not isinstance(handler.formatter._style, logging.PercentStyle)
            or handler.formatter._fmt != "%(message)s"
        ):
            return None
    return log.handlers


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
