"""What the AmoCRM client speaks in: the record of one call, and one error per outcome.

Callers catch these (``client.NotFound`` and so on: the client module re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class ApiCall:
    """One HTTP exchange with AmoCRM, as stored in the audit trail (no secrets)."""

    method: str
    url: str
    request_body: Any
    started_at: datetime
    duration_ms: int = 0
    status: int | None = None
    response_body: str = ""
    error_class: str = ""
    error_detail: str = ""


class AmoCRMError(Exception):
    """Base of every outcome that is not a success. ``retryable`` says whether waiting helps."""

    retryable = False

    def __init__(self, detail: str, *, call: ApiCall | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.call = call
        self.status = status


class Unauthorized(AmoCRMError):
    """401: the token is missing, expired or revoked (or the integration was disabled)."""


class PaymentRequired(AmoCRMError):
    """402: the account's paid or trial period is over."""

    retryable = True


class Blocked(AmoCRMError):
    """403: AmoCRM blocked the API for this account or address; stop and wait long."""

    retryable = True


class NotFound(AmoCRMError):
    """404 (or 204 where an entity was expected): the entity does not exist."""


class ValidationFailed(AmoCRMError):
    """400/422: AmoCRM refused the data; ``errors`` holds its own details."""

    def __init__(self, detail: str, *, errors: list[dict] | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.errors = errors or []


class RateLimited(AmoCRMError):
    """429: too many requests; ``retry_after`` seconds when AmoCRM said."""

    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class Unavailable(AmoCRMError):
    """5xx, a timeout or no connection: AmoCRM could not answer now."""

    retryable = True


class OAuthFailed(AmoCRMError):
    """The token endpoint refused: ``hint`` is AmoCRM's reason (e.g. code expired)."""

    def __init__(self, detail: str, *, hint: str = "", **kwargs):
        super().__init__(detail, **kwargs)
        self.hint = hint
