"""The one place that speaks HTTP to AmoCRM.

Every call has a (connect, read) timeout, is recorded as an ``ApiCall`` for the audit
trail with secrets redacted, and maps AmoCRM's answer to one error class per outcome.
The token endpoint is spoken to through requests-oauthlib; the rest with a Bearer token
from a ``TokenSource`` (see ``tokens.py``), refreshed once on a 401.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from integrations.amocrm.errors import (
    AmoCRMError,
    ApiCall,
    Blocked,
    NotFound,
    OAuthFailed,
    PaymentRequired,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from integrations.monitoring import metrics

__all__ = [
    "AmoCRMClient",
    "AmoCRMError",
    "ApiCall",
    "ApiRequest",
    "Blocked",
    "NotFound",
    "OAuthFailed",
    "PaymentRequired",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]

logger = logging.getLogger(__name__)

# https://www.amocrm.ru/developers/content/oauth/step-by-step
TOKEN_PATH = "/oauth2/access_token"
# https://www.amocrm.ru/developers/content/crm_platform/account-info
ACCOUNT_PATH = "/api/v4/account"
# https://www.amocrm.ru/developers/content/crm_platform/leads-api
LEADS_PATH = "/api/v4/leads"
LEAD_PATH = "/api/v4/leads/{lead_id}"
# https://www.amocrm.ru/developers/content/crm_platform/custom-fields
LEAD_CUSTOM_FIELDS_PATH = "/api/v4/leads/custom_fields"
# https://www.amocrm.ru/developers/content/crm_platform/leads_pipelines
PIPELINES_PATH = "/api/v4/leads/pipelines"

REDACTED = "[redacted]"
_SECRET_KEYS = frozenset({"client_secret", "refresh_token", "access_token"})
# Only the token endpoint deals in authorization codes; elsewhere "code" is AmoCRM's own
# (a validation error's code, a field's code) and the audit trail must keep it.
_OAUTH_SECRET_KEYS = _SECRET_KEYS | {"code"}
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class TokenSource(Protocol):
    """Gives the Bearer token for an account and refreshes it when AmoCRM rejects it."""

    def access_token(self) -> str: ...

    def refreshed_token(self, rejected: str) -> str | None: ...


class RateLimiter(Protocol):
    def slot(self, key: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class ApiRequest:
    """A request as the client sends it, path relative to the account's base URL."""

    method: str
    path: str
    body: Any = None


def lead_update_request(lead_id: int, update: dict) -> ApiRequest:
    """What ``AmoCRMClient.lead_update`` sends; the admin's preview shows it unsent."""
    return ApiRequest("PATCH", LEAD_PATH.format(lead_id=lead_id), update)


def leads_create_request(leads: list[dict]) -> ApiRequest:
    """What ``AmoCRMClient.leads_create`` sends."""
    return ApiRequest("POST", LEADS_PATH, leads)


def redact(value: Any, keys: frozenset[str] = _SECRET_KEYS) -> Any:
    """A copy of a JSON-like value with every secret-bearing key's value replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if k in keys else redact(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, keys) for item in value]
    return value


def _redacted_text(text: str, keys: frozenset[str] = _SECRET_KEYS) -> str:
    try:
        return json.dumps(redact(json.loads(text), keys), ensure_ascii=False)
    except ValueError:
        return text


def _problem_detail(body: Any, fallback: str) -> str:
    """A readable line from AmoCRM's problem+json body."""
    if not isinstance(body, dict):
        return fallback
    parts = []
    for item in body.get("validation-errors") or []:
        for error in item.get("errors") or []:
            parts.append(f"{error.get('path')}: {error.get('detail')} ({error.get('code')})")
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts.extend(f"{key}: {value}" for key, value in errors.items())
    head = ": ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
    if body.get("hint"):
        head = f"{head} ({body['hint']})" if head else str(body["hint"])
    return "; ".join([head, *parts]) if head or parts else fallback


def _retry_after(response: requests.Response, body: Any) -> float | None:
    candidates = [response.headers.get("Retry-After")]
    if isinstance(body, dict):
        candidates.insert(0, body.get("retry_after"))
    for candidate in candidates:
        try:
            return max(0.0, float(candidate))
        except (TypeError, ValueError):
            continue
    return None


class AmoCRMClient:
    """HTTP client for one account. Keeps the ``calls`` it made for the audit trail."""

    def __init__(
        self,
        account,
        *,
        tokens: TokenSource | None = None,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
        on_call: Callable[[ApiCall], None] | None = None,
        audit: bool = True,
    ):
        self.account = account
        self.base_url = account.api_base_url
        self.tokens = tokens
        self.limiter = limiter
        self.session = session or requests.Session()
        self.timeout = timeout or settings.AMOCRM_TIMEOUT
        self.on_call = on_call
        # Deliveries keep their calls as DeliveryAttempt rows; other calls are kept here.
        self.audit = audit
        self.calls: list[ApiCall] = []

    # --- leads ------------------------------------------------------------------------
    def lead_update(self, lead_id: int, update: dict) -> dict:
        """PATCH one lead; only the keys sent change."""
        planned = lead_update_request(lead_id, update)
        return self.request(planned.method, planned.path, json=planned.body)

    def leads_update(self, updates: list[dict]) -> dict:
        """PATCH a batch of leads (each item carries its ``id``)."""
        return self.request("PATCH", LEADS_PATH, json=updates)

    def leads_create(self, leads: list[dict]) -> list[dict]:
        """POST new leads; returns AmoCRM's ``{id, request_id}`` items in order."""
        planned = leads_create_request(leads)
        body = self.request(planned.method, planned.path, json=planned.body)
        return body["_embedded"]["leads"]

    def lead_get(self, lead_id: int) -> dict:
        body = self.request("GET", LEAD_PATH.format(lead_id=lead_id))
        if body is None:
            raise NotFound(f"Lead {lead_id} does not exist", call=self.calls[-1], status=204)
        return body

    def leads_search(self, query: str) -> list[dict]:
        """Leads whose filled fields contain ``query`` (AmoCRM answers 204 for none)."""
        body = self.request("GET", LEADS_PATH, params={"query": query, "limit": 250})
        return [] if body is None else body["_embedded"]["leads"]

    # --- catalogue and account --------------------------------------------------------
    def account_get(self) -> dict:
        return self.request("GET", ACCOUNT_PATH, params={"with": "datetime_settings"})

    def custom_fields_list(self) -> list[dict]:
        return self._pages(LEAD_CUSTOM_FIELDS_PATH, "custom_fields")

    def pipelines_list(self) -> list[dict]:
        return self._pages(PIPELINES_PATH, "pipelines")

    def _pages(self, path: str, key: str) -> list[dict]:
        items, page = [], 1
        while True:
            body = self.request("GET", path, params={"page": page, "limit": 250})
            if body is None:
                return items
            items.extend(body["_embedded"][key])
            if "next" not in body.get("_links", {}):
                return items
            page += 1

    # --- OAuth ------------------------------------------------------------------------
    def token_from_code(self, code: str) -> dict:
        """Exchanges an authorization code for a token pair."""
        return self._token_call(grant="authorization_code", code=code)

    def token_from_refresh(self, refresh_token: str) -> dict:
        """Spends a refresh token for a new pair (AmoCRM rotates refresh tokens)."""
        return self._token_call(grant="refresh_token", refresh_token=refresh_token)

    def _token_call(self, *, grant: str, code: str = "", refresh_token: str = "") -> dict:
        url = self.base_url + TOKEN_PATH
        self._check_transport(url)
        call = ApiCall(
            method="POST",
            url=url,
            request_body={"grant_type": grant, "client_id": self.account.client_id},
            started_at=timezone.now(),
        )
        oauth = OAuth2Session(self.account.client_id, redirect_uri=self.account.redirect_uri)
        # The official SDK's provider sends form bodies, as oauthlib does; AmoCRM takes both.
        hook_kind = "access_token" if grant == "authorization_code" else "refresh_token"
        oauth.register_compliance_hook(f"{hook_kind}_response", self._token_response_hook(call))
        with self._slot():
            return self._token_exchange(
                oauth, call, url, grant=grant, code=code, refresh_token=refresh_token
            )

    def _token_exchange(
        self,
        oauth: OAuth2Session,
        call: ApiCall,
        url: str,
        *,
        grant: str,
        code: str,
        refresh_token: str,
    ) -> dict:
        started = time.monotonic()
        try:
            if grant == "authorization_code":
                token = oauth.fetch_token(
                    url,
                    code=code,
                    client_secret=self.account.client_secret,
                    include_client_id=True,
                    timeout=self.timeout,
                )
            else:
                token = oauth.refresh_token(
                    url,
                    refresh_token=refresh_token,
                    client_id=self.account.client_id,
                    client_secret=self.account.client_secret,
                    redirect_uri=self.account.redirect_uri,
                    timeout=self.timeout,
                )
        except AmoCRMError as error:
            self._finish(call, started, error)
            raise
        except requests.RequestException as error:
            failure = Unavailable(f"AmoCRM unreachable: {error.__class__.__name__}", call=call)
            self._finish(call, started, failure)
            raise failure from error
        except OAuth2Error as error:
            failure = OAuthFailed(f"Unexpected token response: {error.description}", call=call)
            self._finish(call, started, failure)
            raise failure from error
        self._finish(call, started, None)
        return dict(token)

    def _token_response_hook(self, call: ApiCall):
        def hook(response: requests.Response) -> requests.Response:
            call.status = response.status_code
            call.response_body = _redacted_text(response.text, _OAUTH_SECRET_KEYS)
            if response.status_code == 200:
                return response
            body = _json_or_none(response)
            detail = _problem_detail(body, f"HTTP {response.status_code}")
            if response.status_code == 429:
                raise RateLimited(detail, retry_after=_retry_after(response, body), call=call)
            if response.status_code >= 500:
                raise Unavailable(detail, call=call, status=response.status_code)
            hint = body.get("hint", "") if isinstance(body, dict) else ""
            raise OAuthFailed(detail, hint=hint, call=call, status=response.status_code)

        return hook

    def _check_transport(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.hostname not in _LOOPBACK_HOSTS:
            raise OAuthFailed(f"Refusing to send OAuth secrets over plain HTTP to {parts.netloc}")
        # A local AmoCRM-compatible server (the emulator) has no TLS; oauthlib needs leave.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

    # --- the one request path ---------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None):
        """Sends one API request with the account's token; ``None`` for 204 No Content."""
        if self.tokens is None:
            raise Unauthorized("No token source for this account")
        token = self.tokens.access_token()
        try:
            return self._send(method, path, token, json=json, params=params)
        except Unauthorized:
            fresh = self.tokens.refreshed_token(rejected=token)
            if fresh is None:
                raise
            return self._send(method, path, fresh, json=json, params=params)

    def _send(self, method: str, path: str, token: str, *, json: Any, params: dict | None):
        url = self.base_url + path
        self._check_transport(url)  # the Bearer token is as secret as the client secret
        # The query (a search, a page number) is part of what auditors need to see.
        shown = f"{url}?{urlencode(params)}" if params else url
        call = ApiCall(
            method=method, url=shown, request_body=redact(json), started_at=timezone.now()
        )
        with self._slot():
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except requests.RequestException as error:
                failure = Unavailable(f"AmoCRM unreachable: {error.__class__.__name__}", call=call)
                self._finish(call, started, failure)
                raise failure from error
        call.status = response.status_code
        call.response_body = _redacted_text(response.text)
        if response.status_code == 204:
            self._finish(call, started, None)
            return None
        body = _json_or_none(response)
        failure = self._failure(response, body, call)
        self._finish(call, started, failure)
        if failure is not None:
            raise failure
        return body

    @staticmethod
    def _failure(response: requests.Response, body: Any, call: ApiCall) -> AmoCRMError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        detail = _problem_detail(body, f"HTTP {status} {response.reason}")
        kwargs = {"call": call, "status": status}
        if status == 401:
            return Unauthorized(detail, **kwargs)
        if status == 402:
            return PaymentRequired(detail, **kwargs)
        if status == 403:
            return Blocked(detail, **kwargs)
        if status == 404:
            return NotFound(detail, **kwargs)
        if status == 429:
            return RateLimited(detail, retry_after=_retry_after(response, body), **kwargs)
        if status in (400, 422):
            errors = body.get("validation-errors", []) if isinstance(body, dict) else []
            return ValidationFailed(detail, errors=errors, **kwargs)
        if status >= 500:
            return Unavailable(detail, **kwargs)
        return AmoCRMError(detail, **kwargs)

    def _slot(self) -> AbstractContextManager[None]:
        """The integration's turn to send (rate limit, one request in flight)."""
        if self.limiter is None:
            return nullcontext()
        return self.limiter.slot(self.account.client_id or self.base_url)

    def _finish(self, call: ApiCall, started: float, failure: AmoCRMError | None) -> None:
        call.duration_ms = round((time.monotonic() - started) * 1000)
        if failure is not None:
            call.error_class = type(failure).__name__
            call.error_detail = failure.detail
        self.calls.append(call)
        metrics.amocrm_call_observed(call)
        logger.info(
            "amocrm call",
            extra={
                "method": call.method,
                # Not the query: a search's words may be a guest's name or phone.
                "url": call.url.split("?", 1)[0],
                "status": call.status,
                "duration_ms": call.duration_ms,
                "error_class": call.error_class,
            },
        )
        if self.audit:
            call_record(account=self.account, call=call)
        if self.on_call is not None:
            self.on_call(call)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def call_record(*, account, call: ApiCall) -> None:
    """Stores a call made outside a delivery as an ``ApiCallRecord`` (already redacted)."""
    from integrations.amocrm.models import ApiCallRecord

    if account.pk is None:
        return
    ApiCallRecord.from_call(call, account=account).save()
