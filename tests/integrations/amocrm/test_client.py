"""The AmoCRM HTTP client: status codes to errors, timeouts, audit records, OAuth calls."""

import json
from urllib.parse import parse_qs

import pytest
import requests
from django.conf import settings
from responses import matchers

from integrations.amocrm import client as amocrm
from integrations.amocrm.client import AmoCRMClient
from tests.factories import AccountFactory

API = "https://clinic.amocrm.ru"
LEAD_URL = f"{API}/api/v4/leads/23392663"
LEADS_URL = f"{API}/api/v4/leads"
TOKEN_URL = f"{API}/oauth2/access_token"
TOKEN_PAIR = {
    "token_type": "Bearer",
    "expires_in": 86400,
    "server_time": 1751621727,
    "access_token": "issued-access-token",
    "refresh_token": "issued-refresh-token",
}


class StaticTokens:
    """A TokenSource with a fixed token and, optionally, one to hand out after a 401."""

    def __init__(self, token: str = "the-access-token", fresh: str | None = None):
        self.token = token
        self.fresh = fresh
        self.rejected: list[str] = []

    def access_token(self) -> str:
        return self.token

    def refreshed_token(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        return self.fresh


@pytest.fixture
def account():
    # Unsaved: the client only reads the account's URL and OAuth settings.
    return AccountFactory.build(
        base_url=API,
        client_id="client-id",
        client_secret="client-secret-value",
        redirect_uri="https://hub.example.ru/amocrm/oauth/callback/",
    )


@pytest.fixture
def api(account):
    return AmoCRMClient(account, tokens=StaticTokens())


def problem(status: int, title: str, detail: str, **extra) -> dict:
    return {
        "title": title,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
        **extra,
    }


# --- status codes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, amocrm.Unauthorized),
        (402, amocrm.PaymentRequired),
        (403, amocrm.Blocked),
        (404, amocrm.NotFound),
        (400, amocrm.ValidationFailed),
        (422, amocrm.ValidationFailed),
        (429, amocrm.RateLimited),
        (500, amocrm.Unavailable),
        (502, amocrm.Unavailable),
        (503, amocrm.Unavailable),
        (504, amocrm.Unavailable),
    ],
)
def test_each_status_maps_to_its_error_class(api, amocrm_http, status, error_class):
    amocrm_http.patch(LEAD_URL, json=problem(status, "Title", "Detail"), status=status)

    with pytest.raises(error_class) as raised:
        api.lead_update(23392663, {"price": 1})

    assert type(raised.value) is error_class
    assert raised.value.status == status
    assert raised.value.detail == "Title: Detail"


@pytest.mark.parametrize(
    ("error_class", "retryable"),
    [
        (amocrm.Unauthorized, False),
        (amocrm.NotFound, False),
        (amocrm.ValidationFailed, False),
        (amocrm.PaymentRequired, True),
        (amocrm.Blocked, True),
        (amocrm.RateLimited, True),
        (amocrm.Unavailable, True),
    ],
)
def test_error_classes_say_whether_waiting_helps(error_class, retryable):
    assert error_class.retryable is retryable


def test_validation_failure_carries_amocrms_own_readable_detail(api, amocrm_http):
    body = problem(
        400,
        "Bad Request",
        "Request validation failed",
        **{
            "validation-errors": [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "NotSupportedChoice",
                            "path": "custom_fields_values.0.field_id",
                            "detail": "The value you selected is not a valid choice.",
                        },
                        {
                            "code": "InvalidType",
                            "path": "status_id",
                            "detail": "This value should be of type array.",
                        },
                    ],
                }
            ]
        },
    )
    amocrm_http.patch(LEAD_URL, json=body, status=400)

    with pytest.raises(amocrm.ValidationFailed) as raised:
        api.lead_update(23392663, {"status_id": "x"})

    assert raised.value.detail == (
        "Bad Request: Request validation failed; "
        "custom_fields_values.0.field_id: The value you selected is not a valid choice. "
        "(NotSupportedChoice); "
        "status_id: This value should be of type array. (InvalidType)"
    )
    assert raised.value.errors == body["validation-errors"]


def test_errors_map_keyed_by_entity_is_part_of_the_detail(api, amocrm_http):
    body = problem(400, "Bad Request", "Invalid request body")
    body["errors"] = {"11062353": "Loss reason can be specified only for lost lead"}
    amocrm_http.patch(LEAD_URL, json=body, status=400)

    with pytest.raises(amocrm.ValidationFailed) as raised:
        api.lead_update(23392663, {"loss_reason_id": 1})

    assert raised.value.detail == (
        "Bad Request: Invalid request body; "
        "11062353: Loss reason can be specified only for lost lead"
    )


def test_error_without_a_json_body_is_described_by_its_status(api, amocrm_http):
    amocrm_http.patch(LEAD_URL, body="Forbidden", status=403)

    with pytest.raises(amocrm.Blocked) as raised:
        api.lead_update(23392663, {"price": 1})

    assert raised.value.detail == "HTTP 403 Forbidden"


def test_rate_limit_takes_retry_after_from_the_body(api, amocrm_http):
    amocrm_http.patch(
        LEAD_URL, json=problem(429, "Too Many Requests", "Slow down", retry_after=300), status=429
    )

    with pytest.raises(amocrm.RateLimited) as raised:
        api.lead_update(23392663, {"price": 1})

    assert raised.value.retry_after == 300.0


def test_rate_limit_takes_retry_after_from_the_header(api, amocrm_http):
    amocrm_http.patch(LEAD_URL, body="Too Many Requests", status=429, headers={"Retry-After": "7"})

    with pytest.raises(amocrm.RateLimited) as raised:
        api.lead_update(23392663, {"price": 1})

    assert raised.value.retry_after == 7.0


def test_rate_limit_without_retry_after_leaves_it_unknown(api, amocrm_http):
    amocrm_http.patch(LEAD_URL, body="", status=429)

    with pytest.raises(amocrm.RateLimited) as raised:
        api.lead_update(23392663, {"price": 1})

    assert raised.value.retry_after is None


@pytest.mark.parametrize(
    ("failure", "name"),
    [
        (requests.ConnectTimeout("connect timed out"), "ConnectTimeout"),
        (requests.ReadTimeout("read timed out"), "ReadTimeout"),
        (requests.ConnectionError("connection refused"), "ConnectionError"),
    ],
)
def test_timeout_or_no_connection_is_unavailable(api, amocrm_http, failure, name):
    amocrm_http.patch(LEAD_URL, body=failure)

    with pytest.raises(amocrm.Unavailable) as raised:
        api.lead_update(23392663, {"price": 1})

    assert raised.value.detail == f"AmoCRM unreachable: {name}"
    assert raised.value.status is None
    assert api.calls[0].error_class == "Unavailable"
    assert api.calls[0].status is None


# --- success --------------------------------------------------------------------------


def test_success_returns_the_json_body(api, amocrm_http):
    answer = {"id": 23392663, "updated_at": 1751621727}
    amocrm_http.patch(LEAD_URL, json=answer)

    assert api.lead_update(23392663, {"price": 1}) == answer


def test_no_content_returns_none(api, amocrm_http):
    amocrm_http.get(LEADS_URL, status=204)

    assert api.request("GET", "/api/v4/leads", params={"query": "ID_1"}) is None


def test_search_with_no_match_is_an_empty_list(api, amocrm_http):
    amocrm_http.get(LEADS_URL, status=204)

    assert api.leads_search("ID_500") == []


def test_missing_lead_answered_with_no_content_is_not_found(api, amocrm_http):
    amocrm_http.get(LEAD_URL, status=204)

    with pytest.raises(amocrm.NotFound):
        api.lead_get(23392663)


def test_paged_list_follows_next_links_until_the_last_page(api, amocrm_http):
    fields_url = f"{API}/api/v4/leads/custom_fields"
    amocrm_http.get(
        fields_url,
        match=[matchers.query_param_matcher({"page": "1", "limit": "250"})],
        json={"_links": {"next": {"href": "..."}}, "_embedded": {"custom_fields": [{"id": 1}]}},
    )
    amocrm_http.get(
        fields_url,
        match=[matchers.query_param_matcher({"page": "2", "limit": "250"})],
        json={"_links": {}, "_embedded": {"custom_fields": [{"id": 2}]}},
    )

    assert api.custom_fields_list() == [{"id": 1}, {"id": 2}]


def test_request_sends_the_bearer_token_and_json_body(api, amocrm_http):
    amocrm_http.patch(
        LEAD_URL,
        json={"id": 23392663},
        match=[
            matchers.header_matcher({"Authorization": "Bearer the-access-token"}),
            matchers.json_params_matcher({"price": 153887}),
        ],
    )

    api.lead_update(23392663, {"price": 153887})


def test_rejected_token_is_refreshed_once_and_the_request_sent_again(account, amocrm_http):
    tokens = StaticTokens(token="old-token", fresh="new-token")
    amocrm_http.patch(
        LEAD_URL,
        status=401,
        json=problem(401, "Unauthorized", "Неверный логин или пароль"),
        match=[matchers.header_matcher({"Authorization": "Bearer old-token"})],
    )
    amocrm_http.patch(
        LEAD_URL,
        json={"id": 23392663},
        match=[matchers.header_matcher({"Authorization": "Bearer new-token"})],
    )

    assert AmoCRMClient(account, tokens=tokens).lead_update(23392663, {}) == {"id": 23392663}
    assert tokens.rejected == ["old-token"]


def test_second_rejection_after_a_refresh_is_unauthorized(account, amocrm_http):
    tokens = StaticTokens(token="old-token", fresh="new-token")
    amocrm_http.patch(LEAD_URL, status=401, json=problem(401, "Unauthorized", "No"))
    amocrm_http.patch(LEAD_URL, status=401, json=problem(401, "Unauthorized", "Still no"))

    with pytest.raises(amocrm.Unauthorized):
        AmoCRMClient(account, tokens=tokens).lead_update(23392663, {})

    assert len(amocrm_http.calls) == 2
    assert tokens.rejected == ["old-token"]


def test_rejected_token_that_cannot_be_refreshed_is_unauthorized(account, amocrm_http):
    amocrm_http.patch(LEAD_URL, status=401, json=problem(401, "Unauthorized", "No"))

    with pytest.raises(amocrm.Unauthorized):
        AmoCRMClient(account, tokens=StaticTokens(fresh=None)).lead_update(23392663, {})

    assert len(amocrm_http.calls) == 1


def test_client_without_a_token_source_sends_nothing(account, amocrm_http):
    with pytest.raises(amocrm.Unauthorized):
        AmoCRMClient(account).lead_update(23392663, {})


# --- timeouts -------------------------------------------------------------------------

CALLS = {
    "lead_update": lambda c: c.lead_update(23392663, {"price": 1}),
    "leads_create": lambda c: c.leads_create([{"name": "ID_1"}]),
    "leads_search": lambda c: c.leads_search("ID_1"),
    "account_get": lambda c: c.account_get(),
    "pipelines_list": lambda c: c.pipelines_list(),
    "token_from_code": lambda c: c.token_from_code("auth-code"),
    "token_from_refresh": lambda c: c.token_from_refresh("a-refresh-token"),
}


def register_any_answer(amocrm_http):
    import re

    amocrm_http.post(TOKEN_URL, json=TOKEN_PAIR)
    answer = {"_links": {}, "_embedded": {"leads": [], "pipelines": []}}
    for method in ("GET", "POST", "PATCH"):
        amocrm_http.add(method, re.compile(rf"{API}/api/v4/.*"), json=answer)
    amocrm_http.assert_all_requests_are_fired = False


@pytest.mark.parametrize("name", list(CALLS))
def test_every_call_carries_the_configured_timeout(api, amocrm_http, name):
    register_any_answer(amocrm_http)

    CALLS[name](api)

    (call,) = amocrm_http.calls
    assert call.request.req_kwargs["timeout"] == settings.AMOCRM_TIMEOUT


def test_explicit_timeout_is_used_instead_of_the_setting(account, amocrm_http):
    amocrm_http.patch(LEAD_URL, json={"id": 1})

    AmoCRMClient(account, tokens=StaticTokens(), timeout=(1.0, 2.0)).lead_update(23392663, {})

    assert amocrm_http.calls[0].request.req_kwargs["timeout"] == (1.0, 2.0)


def test_custom_session_is_used_for_api_calls(account):
    class RecordingSession(requests.Session):
        def __init__(self):
            super().__init__()
            self.seen = []

        def request(self, method, url, **kwargs):
            self.seen.append(kwargs)
            response = requests.Response()
            response.status_code = 204
            response._content = b""
            return response

    session = RecordingSession()

    AmoCRMClient(account, tokens=StaticTokens(), session=session).leads_search("ID_1")

    assert session.seen[0]["timeout"] == settings.AMOCRM_TIMEOUT
    assert session.seen[0]["headers"] == {"Authorization": "Bearer the-access-token"}


# --- audit records --------------------------------------------------------------------


def test_each_call_is_recorded_with_request_response_and_duration(api, amocrm_http):
    amocrm_http.patch(LEAD_URL, json={"id": 23392663, "updated_at": 1})
    seen = []
    api.on_call = seen.append

    api.lead_update(23392663, {"price": 5})

    (call,) = api.calls
    assert seen == [call]
    assert (call.method, call.url, call.status) == ("PATCH", LEAD_URL, 200)
    assert call.request_body == {"price": 5}
    assert json.loads(call.response_body) == {"id": 23392663, "updated_at": 1}
    assert call.duration_ms >= 0
    assert call.started_at is not None
    assert (call.error_class, call.error_detail) == ("", "")


def test_failed_call_is_recorded_with_its_error(api, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=problem(404, "Not Found", "Lead gone"), status=404)

    with pytest.raises(amocrm.NotFound):
        api.lead_update(23392663, {"price": 5})

    (call,) = api.calls
    assert (call.status, call.error_class, call.error_detail) == (
        404,
        "NotFound",
        "Not Found: Lead gone",
    )


def test_recorded_call_has_token_like_values_redacted(api, amocrm_http):
    amocrm_http.post(
        LEADS_URL,
        json={
            "_embedded": {"leads": [{"id": 1, "request_id": "0"}]},
            "access_token": "echoed-access",
            "refresh_token": "echoed-refresh",
        },
    )

    api.leads_create([{"name": "ID_1", "client_secret": "sent-secret"}])

    recorded = repr(api.calls[0])
    for secret in ("echoed-access", "echoed-refresh", "sent-secret", "the-access-token"):
        assert secret not in recorded
    assert api.calls[0].request_body == [{"name": "ID_1", "client_secret": "[redacted]"}]


def test_recorded_call_keeps_amocrms_error_codes(api, amocrm_http):
    errors = [{"code": "NotSupportedChoice", "path": "status_id", "detail": "Bad choice."}]
    amocrm_http.patch(
        LEAD_URL,
        json={"validation-errors": [{"request_id": "0", "errors": errors}], "status": 400},
        status=400,
    )

    with pytest.raises(amocrm.ValidationFailed):
        api.lead_update(23392663, {"status_id": 1})

    assert json.loads(api.calls[0].response_body)["validation-errors"][0]["errors"] == errors


# --- OAuth ----------------------------------------------------------------------------


def test_token_from_code_sends_the_integrations_credentials(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=TOKEN_PAIR)

    pair = api.token_from_code("auth-code")

    assert pair["access_token"] == "issued-access-token"
    assert pair["refresh_token"] == "issued-refresh-token"
    assert pair["expires_in"] == 86400
    sent = parse_qs(amocrm_http.calls[0].request.body)
    assert sent == {
        "grant_type": ["authorization_code"],
        "code": ["auth-code"],
        "client_id": ["client-id"],
        "client_secret": ["client-secret-value"],
        "redirect_uri": ["https://hub.example.ru/amocrm/oauth/callback/"],
    }


def test_token_from_refresh_sends_the_refresh_token_and_credentials(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=TOKEN_PAIR)

    pair = api.token_from_refresh("a-refresh-token")

    assert pair["access_token"] == "issued-access-token"
    assert pair["refresh_token"] == "issued-refresh-token"
    sent = parse_qs(amocrm_http.calls[0].request.body)
    assert sent == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["a-refresh-token"],
        "client_id": ["client-id"],
        "client_secret": ["client-secret-value"],
        "redirect_uri": ["https://hub.example.ru/amocrm/oauth/callback/"],
    }


def test_token_call_is_recorded_without_secrets(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, json=TOKEN_PAIR)

    api.token_from_code("auth-code")

    (call,) = api.calls
    assert (call.method, call.url, call.status) == ("POST", TOKEN_URL, 200)
    assert call.request_body == {"grant_type": "authorization_code", "client_id": "client-id"}
    recorded = repr(call)
    for secret in (
        "auth-code",
        "client-secret-value",
        "issued-access-token",
        "issued-refresh-token",
    ):
        assert secret not in recorded
    assert json.loads(call.response_body)["expires_in"] == 86400


OAUTH_PROBLEMS = [
    (400, "Authorization code has expired"),
    (400, "Authorization code has been revoked"),
    (400, "Redirect URI is not associated with api"),
    (401, "Token has been revoked"),
]


@pytest.mark.parametrize(("status", "hint"), OAUTH_PROBLEMS)
def test_refused_code_is_oauth_failed_with_amocrms_hint(api, amocrm_http, status, hint):
    amocrm_http.post(
        TOKEN_URL,
        status=status,
        json={
            "hint": hint,
            "title": "Некорректный запрос",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
            "status": status,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
        },
    )

    with pytest.raises(amocrm.OAuthFailed) as raised:
        api.token_from_code("auth-code")

    assert raised.value.hint == hint
    assert raised.value.status == status
    assert raised.value.detail == (
        f"Некорректный запрос: В запросе отсутствует ряд параметров или параметры невалидны "
        f"({hint})"
    )
    assert api.calls[0].error_class == "OAuthFailed"


def test_refused_refresh_is_oauth_failed_with_amocrms_hint(api, amocrm_http):
    amocrm_http.post(
        TOKEN_URL,
        status=401,
        json={"hint": "Token has been revoked", "title": "Unauthorized", "status": 401},
    )

    with pytest.raises(amocrm.OAuthFailed) as raised:
        api.token_from_refresh("spent-refresh-token")

    assert raised.value.hint == "Token has been revoked"


def test_token_endpoint_rate_limit_is_rate_limited(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, status=429, json={"title": "Too Many", "retry_after": 30})

    with pytest.raises(amocrm.RateLimited) as raised:
        api.token_from_refresh("a-refresh-token")

    assert raised.value.retry_after == 30.0


def test_token_endpoint_server_error_is_unavailable(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, status=500, body="oops")

    with pytest.raises(amocrm.Unavailable):
        api.token_from_refresh("a-refresh-token")


def test_token_endpoint_timeout_is_unavailable(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(amocrm.Unavailable) as raised:
        api.token_from_code("auth-code")

    assert raised.value.detail == "AmoCRM unreachable: ReadTimeout"


def test_token_answer_without_a_token_is_oauth_failed(api, amocrm_http):
    amocrm_http.post(TOKEN_URL, json={"token_type": "Bearer"})

    with pytest.raises(amocrm.OAuthFailed) as raised:
        api.token_from_code("auth-code")

    assert raised.value.detail.startswith("Unexpected token response")


# --- transport ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.token_from_code("auth-code"),
        lambda c: c.token_from_refresh("a-refresh-token"),
        lambda c: c.lead_update(23392663, {"price": 1}),
    ],
    ids=["code", "refresh", "api"],
)
def test_plain_http_to_a_remote_host_is_refused_before_sending(amocrm_http, call):
    account = AccountFactory.build(base_url="http://clinic.example.ru")
    remote = AmoCRMClient(account, tokens=StaticTokens())

    with pytest.raises(amocrm.OAuthFailed, match=r"plain HTTP to clinic\.example\.ru"):
        call(remote)

    assert len(amocrm_http.calls) == 0


def test_plain_http_to_a_loopback_server_is_allowed(amocrm_http, monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    account = AccountFactory.build(base_url="http://127.0.0.1:8765")
    amocrm_http.post("http://127.0.0.1:8765/oauth2/access_token", json=TOKEN_PAIR)
    amocrm_http.patch("http://127.0.0.1:8765/api/v4/leads/1", json={"id": 1})
    local = AmoCRMClient(account, tokens=StaticTokens())

    assert local.token_from_code("auth-code")["access_token"] == "issued-access-token"
    assert local.lead_update(1, {}) == {"id": 1}
