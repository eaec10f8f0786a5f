"""Error answers in the shapes AmoCRM uses (reference sections 1.5, 2 and 5).

Handlers raise these; the app renders them. The API speaks ``application/problem+json``
with a ``https://httpstatus.es/<status>`` type; the token endpoint speaks plain JSON with
the OAuthProblemJson type and a ``hint``.
"""

from __future__ import annotations

from .messages import JSON, PROBLEM_JSON, Response

HTTPSTATUS_TYPE = "https://httpstatus.es/{status}"
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"

# Spelled out rather than taken from http.HTTPStatus, whose phrases change between
# Python versions (422 became "Unprocessable Content" in 3.13); these are AmoCRM's.
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    504: "Gateway Timeout",
}

UNAUTHORIZED_DETAIL = "Неверный логин или пароль"
TOO_MANY_REQUESTS_DETAIL = (
    "You have sent too many requests in a given amount of time. Please, try again later."
)


class Problem(Exception):
    """An API error answer; ``status`` is the HTTP status it is sent with."""

    content_type = PROBLEM_JSON

    def __init__(self, status: int, detail: str, *, headers: list | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []

    def body(self) -> dict:
        return {
            "title": TITLES.get(self.status, "Error"),
            "type": HTTPSTATUS_TYPE.format(status=self.status),
            "status": self.status,
            "detail": self.detail,
        }

    def response(self) -> Response:
        response = Response.json(self.body(), self.status, self.content_type)
        response.headers.extend(self.headers)
        return response


class Unauthorized(Problem):
    def __init__(self):
        super().__init__(401, UNAUTHORIZED_DETAIL)


class TooManyRequests(Problem):
    def __init__(self, retry_after: int = 1):
        super().__init__(429, TOO_MANY_REQUESTS_DETAIL)
        self.retry_after = retry_after

    def body(self) -> dict:
        return {**super().body(), "retry_after": self.retry_after}


class ValidationFailed(Problem):
    """400 with one ``validation-errors`` entry per failing item of the request."""

    def __init__(self, entries: list[dict]):
        super().__init__(400, "Request validation failed")
        self.entries = entries

    def body(self) -> dict:
        return {"validation-errors": self.entries, **super().body()}


class OAuthProblem(Problem):
    """A refused token grant: AmoCRM's Russian title and detail, the reason in ``hint``."""

    content_type = JSON
    title = "Некорректный запрос"
    generic_detail = "В запросе отсутствует ряд параметров или параметры невалидны"

    def __init__(self, hint: str, status: int = 400):
        super().__init__(status, hint)
        self.hint = hint

    def body(self) -> dict:
        return {
            "hint": self.hint,
            "title": self.title,
            "type": OAUTH_PROBLEM_TYPE,
            "status": self.status,
            "detail": self.generic_detail,
        }
