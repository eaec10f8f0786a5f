"""gunicorn's access log without secrets: the OAuth code and the intake tokens scrubbed.

AmoCRM's OAuth callback brings ``?code=...&state=...``; RDESK may carry its intake token
as ``?token=...`` or as one path segment after the flow's path (``/zdrav/booked/<token>``).
gunicorn writes the request line, path, query and Referer as they came: this logger
replaces those values before the line is formatted. nginx's access log follows the same
rules (nginx/*.template: ``$amohub_scrubbed_uri``).
"""

from gunicorn.glogging import Logger

from hub.log_scrubbing import query_scrub, uri_scrub


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
