"""The emulator as a WSGI application: routing, rate limit, Bearer auth, request log.

Order per request, as AmoCRM appears to do it: the rate limit first (a 429 costs nothing),
then the route, then the token, then the handler. Every request to the emulated surface
(/oauth, /oauth2, /api) is logged with its answer, 429s included.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Iterable

from . import api, control, oauth
from .messages import Request, Response
from .problems import Problem, TooManyRequests, Unauthorized
from .state import State

Handler = Callable[..., Response]

_LEAD = r"(?P<lead_id>\d+)"
_PIPELINE = r"(?P<pipeline_id>\d+)"

# (method, path pattern, handler); a path listed with other methods answers 405.
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"/oauth", oauth.authorize),
    ("POST", r"/oauth2/access_token", oauth.token),
    ("GET", r"/api/v4/account", api.account),
    ("GET", r"/api/v4/leads", api.list_leads),
    ("POST", r"/api/v4/leads", api.create_leads),
    ("PATCH", r"/api/v4/leads", api.update_leads),
    ("GET", r"/api/v4/leads/custom_fields", api.list_custom_fields),
    ("GET", r"/api/v4/leads/custom_fields/(?P<field_id>\d+)", api.get_custom_field),
    ("GET", r"/api/v4/leads/pipelines", api.list_pipelines),
    ("GET", rf"/api/v4/leads/pipelines/{_PIPELINE}", api.get_pipeline),
    ("GET", rf"/api/v4/leads/pipelines/{_PIPELINE}/statuses", api.list_statuses),
    (
        "GET",
        rf"/api/v4/leads/pipelines/{_PIPELINE}/statuses/(?P<status_id>\d+)",
        api.get_status,
    ),
    ("GET", rf"/api/v4/leads/{_LEAD}", api.get_lead),
    ("PATCH", rf"/api/v4/leads/{_LEAD}", api.update_lead),
    ("POST", r"/_emulator/codes", control.issue_code),
    ("POST", r"/_emulator/tokens", control.issue_token),
    ("GET", r"/_emulator/requests", control.list_requests),
    ("GET", r"/_emulator/counters", control.counters),
    ("GET", r"/_emulator/leads", control.list_leads),
    ("GET", rf"/_emulator/leads/{_LEAD}", control.get_lead),
    ("POST", r"/_emulator/reset", control.reset),
    ("POST", r"/_emulator/expire-tokens", control.expire_tokens),
    ("POST", rf"/_emulator/leads/{_LEAD}/delete", control.delete_lead),
    ("POST", r"/_emulator/faults", control.set_faults),
]

RATE_LIMITED_PREFIXES = ("/api/v4/", "/oauth2/")
AUTHENTICATED_PREFIX = "/api/v4/"
CONTROL_PREFIX = "/_emulator/"


class EmulatorApp:
    """A WSGI callable over one ``State``."""

    def __init__(self, state: State):
        self.state = state
        self.routes = [
            (method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in ROUTES
        ]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        delay = self.state.faults.get("delay") or 0.0
        if delay and request.path.startswith(RATE_LIMITED_PREFIXES):
            time.sleep(delay)  # outside the lock: other requests are answered meanwhile
        with self.state.lock:
            response = self.respond(request)
            if not request.path.startswith(CONTROL_PREFIX):
                self.state.log_request(_log_entry(request, response))
        headers = [("X-Request-Id", secrets.token_hex(8)), *response.wsgi_headers()]
        start_response(response.status_line, headers)
        return [response.body]

    def respond(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith(RATE_LIMITED_PREFIXES) and not self.state.rate_window.admit(
            request.received_at
        ):
            self.state.counters["rate_limited"] += 1
            return TooManyRequests().response()
        try:
            handler, params = self._route(request.method, path, request)
            if path.startswith(AUTHENTICATED_PREFIX) and not self._authenticated(request):
                self.state.counters["unauthorized"] += 1
                raise Unauthorized()
            return handler(self.state, request, **params)
        except Problem as problem:
            return problem.response()
        except Exception:
            # A bug in the emulator must reach the test output, not hang the client.
            traceback.print_exc(file=sys.stderr)
            return Problem(500, "Emulator error; see its stderr").response()

    def _route(self, method: str, path: str, request: Request) -> tuple[Handler, dict]:
        allowed = []
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method == method:
                return handler, match.groupdict()
            allowed.append(route_method)
        if allowed:
            raise Problem(
                405,
                f"Method {method} is not allowed",
                headers=[("Allow", ", ".join(sorted(set(allowed))))],
            )
        raise Problem(404, f"Cannot {method} {self.state.base_url}{request.path}")

    def _authenticated(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.state.access_token_valid(token.strip())


def _log_entry(request: Request, response: Response) -> dict:
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": dict(request.headers),
        "body": request.parsed_body(),
        "status": response.status,
        "response": response.data,
        "time": request.received_at,
    }
