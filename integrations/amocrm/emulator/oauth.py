"""OAuth 2.0 as AmoCRM speaks it: the consent link and the token endpoint (section 1).

Consent is approved at once (this is a demo server); ``deny=1`` plays the user pressing
Deny. The token endpoint takes JSON or form bodies and client credentials in the body or
as HTTP Basic, and answers refusals with OAuthProblemJson bodies and AmoCRM's hints.
"""

from __future__ import annotations

import base64
import binascii
import html
from urllib.parse import unquote, urlencode

from .messages import Request, Response
from .problems import OAuthProblem
from .state import CODE_LIFETIME, State


def authorize(state: State, request: Request) -> Response:
    """GET /oauth: redirects to the integration's redirect URI with a code, or an error."""
    config = state.config
    client_id = request.param("client_id")
    if client_id != config.client_id:
        return Response.html(
            "<h1>Интеграция не найдена</h1>"
            f"<p>Unknown client_id: {html.escape(client_id or '(none)')}</p>",
            status=400,
        )
    params = {}
    if request.param("deny") == "1":
        params["error"] = "access_denied"
    else:
        params["code"] = state.issue_code()
    if request.param("state") is not None:
        params["state"] = request.param("state")
    if "code" in params:
        params["referer"] = request.host
        params["platform"] = "1"
    params["client_id"] = client_id
    separator = "&" if "?" in config.redirect_uri else "?"
    return Response.redirect(config.redirect_uri + separator + urlencode(params))


def token(state: State, request: Request) -> Response:
    """POST /oauth2/access_token: the authorization_code and refresh_token grants."""
    try:
        pair = _grant(state, _token_request(request))
    except OAuthProblem:
        state.counters["invalid_grant"] += 1
        raise
    return Response.json(
        {
            "token_type": "Bearer",
            "expires_in": pair["expires_in"],
            "server_time": int(state.now()),
            "access_token": pair["access_token"],
            "refresh_token": pair["refresh_token"],
        }
    )


def _token_request(request: Request) -> dict:
    try:
        if "json" in request.headers.get("content-type", "") or request.body.startswith(b"{"):
            params = request.json()
        else:
            params = request.form()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise OAuthProblem("Check the `grant_type` parameter")
    basic = _basic_credentials(request.headers.get("authorization", ""))
    if basic and "client_id" not in params:
        params["client_id"], params["client_secret"] = basic
    return params


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, client_secret = decoded.partition(":")
    return unquote(client_id), unquote(client_secret)


def _grant(state: State, params: dict) -> dict:
    config = state.config
    if params.get("client_id") != config.client_id:
        raise OAuthProblem("Check the `client_id` parameter")
    if params.get("client_secret") != config.client_secret:
        raise OAuthProblem("Check the `client_secret` parameter")
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        return _authorization_code_grant(state, params)
    if grant_type == "refresh_token":
        return _refresh_token_grant(state, params)
    raise OAuthProblem("Check the `grant_type` parameter")


def _check_redirect_uri(state: State, redirect_uri) -> None:
    if redirect_uri != state.config.redirect_uri:
        raise OAuthProblem("Redirect URI is not associated with client")


def _authorization_code_grant(state: State, params: dict) -> dict:
    if not params.get("redirect_uri"):
        raise OAuthProblem("Check the `redirect_uri` parameter")
    _check_redirect_uri(state, params["redirect_uri"])
    if not params.get("code"):
        raise OAuthProblem("Check the `code` parameter")
    code = state.codes.get(params["code"])
    if code is None:
        raise OAuthProblem("Cannot decrypt the authorization code")
    if state.now() >= code.issued_at + CODE_LIFETIME:
        raise OAuthProblem("Authorization code has expired")
    if code.used:
        raise OAuthProblem("Authorization code has been revoked")
    code.used = True
    state.counters["authorization_code"] += 1
    return state.issue_token()


def _refresh_token_grant(state: State, params: dict) -> dict:
    # The token endpoint needs redirect_uri with a code; with a refresh token AmoCRM's
    # docs send it too, so it is checked when present but not required.
    if params.get("redirect_uri") is not None:
        _check_redirect_uri(state, params["redirect_uri"])
    if not params.get("refresh_token"):
        raise OAuthProblem("Check the `refresh_token` parameter")
    spent = state.refresh_tokens.get(params["refresh_token"])
    if spent is None:
        raise OAuthProblem("Invalid refresh token")
    if not spent.valid(state.now()):
        raise OAuthProblem("Token has been revoked", status=401)
    # Kommo: the previous refresh token survives a refresh until its successor is used,
    # so a client that lost the answer to a refresh can still recover.
    parent = state.refresh_tokens.get(spent.parent) if spent.parent else None
    if parent is not None:
        parent.revoked = True
    # amoCRM: a refresh token is exchanged once.
    if state.config.strict_refresh:
        spent.revoked = True
    state.counters["refresh"] += 1
    return state.issue_token(rotated_from=spent.value)
