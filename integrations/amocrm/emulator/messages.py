"""The emulator's request and response objects, built from and turned into plain WSGI."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

JSON = "application/json"
HAL_JSON = "application/hal+json"
PROBLEM_JSON = "application/problem+json"


@dataclass
class Request:
    """One incoming request with its body already read (so every answer can close cleanly)."""

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    host: str = ""
    received_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_environ(cls, environ: dict) -> Request:
        received_at = time.monotonic()
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        host = headers.get("host") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO") or "/",
            query_string=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
            host=host,
            received_at=received_at,
        )

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode("utf-8")).items()}

    def parsed_body(self) -> Any:
        """Best-effort reading for the request log: JSON, then a form, else None."""
        if not self.body:
            return None
        try:
            return self.json()
        except ValueError:
            pass
        if "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            try:
                return self.form()
            except ValueError:
                return None
        return None


@dataclass
class Response:
    """An answer; ``data`` keeps the JSON payload so the request log can show it."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: Any = None

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = JSON) -> Response:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, f"{content_type}; charset=utf-8", data=data)

    @classmethod
    def hal(cls, data: Any, status: int = 200) -> Response:
        return cls.json(data, status, HAL_JSON)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status)

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, headers=[("Location", location)])

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8")

    @property
    def status_line(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}"

    def wsgi_headers(self) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if self.content_type:
            headers.append(("Content-Type", self.content_type))
        headers.append(("Content-Length", str(len(self.body))))
        return headers
