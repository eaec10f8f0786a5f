"""The OAuth round trip an admin makes: Connect, AmoCRM's consent page, the callback page.

The emulator plays AmoCRM (consent page and token endpoint); the pages are asserted as
the admin reads them.
"""

import html
import time
from urllib.parse import urlsplit

import pytest

from integrations.amocrm.models import Account, Token
from integrations.amocrm.oauth import SESSION_KEY
from tests.conftest import fixture_json
from tests.factories import AccountFactory
from tests.integrations.amocrm.consent import (
    closed_url,
    connect,
    connect_start,
    consent_answer,
    issued_state,
    query,
    with_query,
)

START_AGAIN = "Start again with the Connect button on the account."


def page(response) -> str:
    """The page's HTML with entities decoded, so messages read as the admin sees them."""
    return html.unescape(response.content.decode())


def message(response) -> str:
    """The one message the callback page shows."""
    return response.context["message"]


def assert_not_connected(account, emulator) -> None:
    account.refresh_from_db()
    assert account.state == Account.State.DISCONNECTED
    assert not Token.objects.filter(account=account).exists()


# --- starting -------------------------------------------------------------------------


def test_connect_sends_the_admin_to_the_consent_page_with_client_id_and_state(
    admin_client, new_account, emulator
):
    consent_url = connect_start(admin_client, new_account)

    parts = urlsplit(consent_url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{emulator.base_url}/oauth"
    params = query(consent_url)
    assert params["client_id"] == "emulator-client"
    assert params["mode"] == "popup"
    assert len(params["state"]) >= 32
    assert params["state"] == issued_state(admin_client)
    assert admin_client.session[SESSION_KEY]["account_id"] == new_account.pk


def test_each_connect_issues_a_fresh_state(admin_client, new_account):
    first = query(connect_start(admin_client, new_account))["state"]
    second = query(connect_start(admin_client, new_account))["state"]

    assert first != second
    assert issued_state(admin_client) == second


def test_connect_for_an_unknown_account_is_not_found(admin_client, db):
    assert admin_client.get("/amocrm/oauth/start/999999/").status_code == 404


# --- success --------------------------------------------------------------------------


def test_allowed_consent_connects_the_account_and_names_it(admin_client, new_account, emulator):
    response = connect(admin_client, new_account)

    assert response.status_code == 200
    content = page(response)
    assert "<h1>Connected to AmoCRM</h1>" in content
    assert f"Account 'Zdravnitsa' at {emulator.base_url} is connected." in content
    assert "Account: <strong>Zdravnitsa</strong>" in content
    assert "state: Connected" in content
    assert "Connect again" not in content
    new_account.refresh_from_db()
    assert new_account.state == Account.State.CONNECTED
    token = Token.objects.get(account=new_account)
    assert emulator.state.access_token_valid(token.access_token)
    assert token.refresh_token in emulator.state.refresh_tokens
    assert emulator.state.counters["authorization_code"] == 1


def test_callback_carries_what_amocrm_sends(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))

    assert callback.startswith("/amocrm/oauth/callback/?")
    assert set(query(callback)) == {"code", "state", "referer", "platform", "client_id"}


def test_reconnecting_replaces_the_token_pair(admin_client, new_account, emulator):
    connect(admin_client, new_account)
    first = Token.objects.get(account=new_account).access_token

    response = connect(admin_client, new_account)

    assert response.status_code == 200
    assert Token.objects.get(account=new_account).access_token != first
    assert Token.objects.filter(account=new_account).count() == 1


# --- state (CSRF) ---------------------------------------------------------------------


def test_callback_with_another_state_is_refused_without_exchanging_the_code(
    admin_client, new_account, emulator
):
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(with_query(callback, state="forged-state"))

    assert response.status_code == 400
    assert "<h1>Connection refused: state mismatch</h1>" in page(response)
    assert message(response) == (f"The state does not match the one this hub issued. {START_AGAIN}")
    assert emulator.state.counters["authorization_code"] == 0
    assert_not_connected(new_account, emulator)


def test_callback_without_a_state_is_refused(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(with_query(callback, state=None))

    assert response.status_code == 400
    assert message(response) == (
        f"No connection was started from this browser, or it was used. {START_AGAIN}"
    )
    assert_not_connected(new_account, emulator)


def test_replayed_callback_is_refused(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))
    assert admin_client.get(callback).status_code == 200

    response = admin_client.get(callback)

    assert response.status_code == 400
    assert "<h1>Connection refused: state mismatch</h1>" in page(response)
    assert message(response) == (
        f"No connection was started from this browser, or it was used. {START_AGAIN}"
    )
    assert emulator.state.counters["authorization_code"] == 1


def test_callback_in_a_browser_that_started_no_connection_is_refused(
    admin_client, admin_user, client, new_account, emulator
):
    # A link crafted from someone else's consent, opened in another admin's browser.
    callback = consent_answer(connect_start(admin_client, new_account))
    client.force_login(admin_user)

    response = client.get(callback)

    assert response.status_code == 400
    assert message(response).startswith("No connection was started from this browser")
    assert_not_connected(new_account, emulator)


def test_state_issued_more_than_20_minutes_ago_is_refused(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))
    session = admin_client.session
    session[SESSION_KEY] = {**session[SESSION_KEY], "issued": session[SESSION_KEY]["issued"] - 1201}
    session.save()

    response = admin_client.get(callback)

    assert response.status_code == 400
    assert message(response) == (
        f"The connection was started more than 20 minutes ago. {START_AGAIN}"
    )
    assert_not_connected(new_account, emulator)


# --- client_id and refusal ------------------------------------------------------------


def test_callback_for_another_integration_is_refused(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(with_query(callback, client_id="other-integration"))

    assert response.status_code == 400
    assert "<h1>Connection refused: wrong integration</h1>" in page(response)
    assert message(response) == (
        "The callback is for integration other-integration, but account 'Zdravnitsa' "
        "uses integration emulator-client."
    )
    assert emulator.state.counters["authorization_code"] == 0
    assert_not_connected(new_account, emulator)


def test_callback_values_are_escaped_in_the_page(admin_client, new_account):
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(with_query(callback, client_id="<script>alert(1)</script>"))

    assert response.status_code == 400
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_access_refused_in_amocrm_has_its_own_message(admin_client, new_account, emulator):
    response = connect(admin_client, new_account, deny=True)

    assert response.status_code == 400
    assert "<h1>Access was refused</h1>" in page(response)
    assert message(response) == (
        "Access was not granted in AmoCRM, so nothing changed. Press Connect on the "
        "account and choose Allow to connect it."
    )
    assert "Account: <strong>Zdravnitsa</strong>" in page(response)
    assert "Connect again" in page(response)
    assert emulator.state.counters["requests"] == 1  # the consent page only
    assert_not_connected(new_account, emulator)


def test_access_refused_leaves_a_connected_account_as_it_was(admin_client, new_account, emulator):
    connect(admin_client, new_account)
    token = Token.objects.get(account=new_account).access_token

    connect(admin_client, new_account, deny=True)

    new_account.refresh_from_db()
    assert new_account.state == Account.State.CONNECTED
    assert Token.objects.get(account=new_account).access_token == token


# --- the code exchange fails ----------------------------------------------------------


def test_expired_code_says_codes_live_20_minutes(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))
    emulator.state.age_codes(21 * 60)

    response = admin_client.get(callback)

    assert response.status_code == 400
    assert "<h1>Connection failed</h1>" in page(response)
    assert message(response) == "The authorization code has expired (codes live 20 minutes)."
    assert emulator.state.counters["invalid_grant"] == 1
    assert_not_connected(new_account, emulator)


def test_reused_code_says_it_was_already_used(admin_client, new_account, emulator):
    used = consent_answer(connect_start(admin_client, new_account))
    admin_client.get(used)
    Token.objects.all().delete()
    Account.objects.filter(pk=new_account.pk).update(state=Account.State.DISCONNECTED)
    fresh_state = query(connect_start(admin_client, new_account))["state"]

    response = admin_client.get(with_query(used, state=fresh_state))

    assert response.status_code == 400
    assert message(response) == "This authorization code was already used."
    assert_not_connected(new_account, emulator)


def test_unknown_code_says_amocrm_did_not_recognise_it(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(with_query(callback, code="def502-not-a-code"))

    assert response.status_code == 400
    assert message(response) == "AmoCRM did not recognise the authorization code."


def test_wrong_client_secret_says_to_check_the_secret(admin_client, new_account, emulator):
    Account.objects.filter(pk=new_account.pk).update(client_secret="mistyped-secret")
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(callback)

    assert response.status_code == 400
    assert message(response) == (
        "AmoCRM rejected the client secret: check the account's secret key."
    )
    assert "Connect again" in page(response)
    assert_not_connected(new_account, emulator)


def test_redirect_uri_mismatch_says_so(admin_client, new_account, emulator):
    Account.objects.filter(pk=new_account.pk).update(
        redirect_uri="https://elsewhere.example/amocrm/oauth/callback/"
    )
    callback = consent_answer(connect_start(admin_client, new_account))

    response = admin_client.get(callback)

    assert response.status_code == 400
    assert message(response) == ("The redirect URI does not match the integration's redirect link.")


def test_unreachable_amocrm_is_a_502_saying_so(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))
    Account.objects.filter(pk=new_account.pk).update(base_url=closed_url())

    response = admin_client.get(callback)

    assert response.status_code == 502
    assert "<h1>Connection failed</h1>" in page(response)
    assert message(response) == (
        "AmoCRM could not be reached (ConnectionError). Try again in a few minutes."
    )
    assert_not_connected(new_account, emulator)


# --- who may use it -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/amocrm/oauth/callback/?code=c&state=s", "/amocrm/oauth/start/1/"]
)
def test_anonymous_visitor_is_sent_to_the_admin_login(client, db, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_user_who_is_not_staff_is_sent_to_the_admin_login(
    client, django_user_model, new_account, emulator
):
    user = django_user_model.objects.create_user("clerk", password="x")
    client.force_login(user)
    callback = f"/amocrm/oauth/callback/?code={emulator.state.issue_code()}&state=s"

    for path in (f"/amocrm/oauth/start/{new_account.pk}/", callback):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    assert emulator.state.counters["authorization_code"] == 0
    assert_not_connected(new_account, emulator)


# --- who may connect ------------------------------------------------------------------


def pending_in_session(client, account, state="s" * 32) -> str:
    """What pressing Connect leaves in the session (as if the user had been allowed to)."""
    session = client.session
    session[SESSION_KEY] = {"state": state, "account_id": account.pk, "issued": time.time()}
    session.save()
    return state


@pytest.mark.parametrize("role_client", ["auditor_client", "operator_client"])
def test_viewer_pressing_connect_is_refused_and_no_state_is_kept(
    request, role_client, new_account, emulator
):
    client = request.getfixturevalue(role_client)

    response = client.get(f"/amocrm/oauth/start/{new_account.pk}/")

    assert response.status_code == 403
    assert SESSION_KEY not in client.session
    assert emulator.state.requests == []


def test_auditor_callback_with_a_valid_code_is_refused_without_exchanging_it(
    auditor_client, new_account, emulator
):
    state = pending_in_session(auditor_client, new_account)
    code = emulator.state.issue_code()

    response = auditor_client.get(
        "/amocrm/oauth/callback/",
        {"code": code, "state": state, "client_id": new_account.client_id},
    )

    assert response.status_code == 403
    assert emulator.state.counters["authorization_code"] == 0
    assert code in emulator.state.codes  # still unused
    assert_not_connected(new_account, emulator)


def test_hub_admin_connects_the_account(hub_admin_client, new_account, emulator):
    response = connect(hub_admin_client, new_account)

    assert response.status_code == 200
    assert "<h1>Connected to AmoCRM</h1>" in page(response)
    new_account.refresh_from_db()
    assert new_account.state == Account.State.CONNECTED


# --- a real AmoCRM host (mocked with responses) ---------------------------------------

PAIR = fixture_json("amocrm/token-pair.json")


@pytest.fixture
def amocrm_account(db) -> Account:
    return AccountFactory(
        name="Clinic", subdomain="clinic", base_url="", state=Account.State.DISCONNECTED
    )


def test_real_account_is_sent_to_amocrms_own_consent_page(admin_client, amocrm_account):
    consent_url = connect_start(admin_client, amocrm_account)

    assert consent_url.startswith("https://www.amocrm.ru/oauth?")
    assert query(consent_url) == {
        "client_id": "client-id",
        "state": issued_state(admin_client),
        "mode": "popup",
    }


def test_code_is_exchanged_at_the_host_amocrm_names_in_referer(
    admin_client, amocrm_account, amocrm_http
):
    amocrm_http.post("https://clinic-renamed.amocrm.ru/oauth2/access_token", json=PAIR)
    connect_start(admin_client, amocrm_account)
    state = issued_state(admin_client)

    response = admin_client.get(
        f"/amocrm/oauth/callback/?code=c0de&state={state}&referer=clinic-renamed.amocrm.ru"
    )

    assert response.status_code == 200
    amocrm_account.refresh_from_db()
    assert amocrm_account.api_base_url == "https://clinic-renamed.amocrm.ru"
    assert amocrm_account.state == Account.State.CONNECTED


def test_amocrm_server_error_is_a_502_saying_it_is_unavailable(
    admin_client, amocrm_account, amocrm_http
):
    amocrm_http.post(
        "https://clinic.amocrm.ru/oauth2/access_token", status=503, body="Service Unavailable"
    )
    connect_start(admin_client, amocrm_account)
    state = issued_state(admin_client)

    response = admin_client.get(f"/amocrm/oauth/callback/?code=c0de&state={state}")

    assert response.status_code == 502
    assert message(response) == ("AmoCRM is unavailable (HTTP 503). Try again in a few minutes.")
    assert not Token.objects.filter(account=amocrm_account).exists()


def test_auditor_callback_calls_no_amocrm_and_does_not_repoint_the_account(
    auditor_client, amocrm_account, amocrm_http
):
    state = pending_in_session(auditor_client, amocrm_account)

    response = auditor_client.get(
        f"/amocrm/oauth/callback/?code=c0de&state={state}&referer=elsewhere.amocrm.ru"
    )

    assert response.status_code == 403
    assert len(amocrm_http.calls) == 0
    amocrm_account.refresh_from_db()
    assert amocrm_account.api_base_url == "https://clinic.amocrm.ru"
    assert amocrm_account.state == Account.State.DISCONNECTED
    assert not Token.objects.filter(account=amocrm_account).exists()
