"""Secrets never leave the database: not in logs, admin pages or audit rows.

A whole life of an account is played against the emulator with every log record captured
at DEBUG (both as pytest sees them and as the JSON formatter writes them): connect,
deliver, refresh before expiry, refresh on a 401, lose the connection, fail to reconnect,
reconnect, test the connection, fetch the catalogue, and use a long-lived token. Then
every admin page of the accounts, tokens and the audit trail is rendered. No client
secret, access or refresh token, long-lived token or authorization code the emulator ever
issued may appear in any of it.
"""

import json
import logging

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from integrations.amocrm.models import Account, ApiCallRecord, Token
from integrations.sync.delivery import event_deliver
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow, InboundEvent
from tests.factories import AccountFactory, InboundEventFactory
from tests.integrations.amocrm.consent import (
    connect,
    connect_start,
    consent_answer,
    query,
    with_query,
)
from tests.integrations.rdesk.payloads import load_item

TYPED_SECRET = "typed-in-client-secret-value"

ADMIN_MODELS = [
    ("amocrm", "account", Account),
    ("amocrm", "token", Token),
    ("amocrm", "apicallrecord", ApiCallRecord),
    ("sync", "inboundevent", InboundEvent),
    ("sync", "deliveryattempt", DeliveryAttempt),
]


def booking(flow) -> InboundEvent:
    item = load_item("rdesk-booked.json")
    return InboundEventFactory(
        flow=flow,
        payload=item,
        status=EventStatus.QUEUED,
        rdesk_id=str(item["id"]),
        lead_id=str(item["lead_id"]),
    )


def issued_secrets(emulator, account) -> set[str]:
    state = emulator.state
    secrets = {
        account.client_secret,
        TYPED_SECRET,
        *state.access_tokens,  # OAuth access tokens and the long-lived one
        *state.refresh_tokens,
        *state.codes,
    }
    assert len(secrets) > 10, secrets  # the cycle below issued them all
    return secrets


def account_lifecycle(admin_client, account, emulator) -> list[str]:
    """Plays the account's life through the hub; the HTML pages the admin saw."""
    pages = []
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()

    # Connect through the admin and AmoCRM's consent page.
    pages.append(connect(admin_client, account))
    assert Account.objects.get(pk=account.pk).state == Account.State.CONNECTED

    # Deliver with the pair; then with a pair due for refresh; then after a 401.
    assert event_deliver(event_id=booking(flow).pk) == EventStatus.DELIVERED
    Token.objects.filter(account=account).update(expires_at=timezone.now())
    assert event_deliver(event_id=booking(flow).pk) == EventStatus.DELIVERED
    emulator.state.expire_access_tokens()
    assert event_deliver(event_id=booking(flow).pk) == EventStatus.DELIVERED
    assert emulator.state.counters["refresh"] == 2

    # AmoCRM revokes everything: the refresh is refused and the account disconnected.
    emulator.state.revoke_tokens()
    assert event_deliver(event_id=booking(flow).pk) == EventStatus.QUEUED
    assert Account.objects.get(pk=account.pk).state == Account.State.DISCONNECTED

    # Reconnections that fail (a forged state, then an expired code), then one that works.
    callback = consent_answer(connect_start(admin_client, account))
    pages.append(admin_client.get(with_query(callback, state="forged")))
    callback = consent_answer(connect_start(admin_client, account))
    emulator.state.age_codes(30 * 60)
    pages.append(admin_client.get(callback))
    pages.append(connect(admin_client, account))
    assert Account.objects.get(pk=account.pk).state == Account.State.CONNECTED

    # The admin's own calls: test the connection, fetch the catalogue.
    pages.append(
        admin_client.post(f"/admin/amocrm/account/{account.pk}/test-connection/", follow=True)
    )
    pages.append(
        admin_client.post(
            "/admin/amocrm/account/",
            {"action": "refresh_catalogue", ACTION_CHECKBOX_NAME: [account.pk]},
            follow=True,
        )
    )

    # A private integration with a long-lived token.
    long_lived = AccountFactory(
        name="Private",
        base_url=emulator.base_url,
        client_id="emulator-client",
        long_lived_token=emulator.state.issue_token(long_lived=True)["access_token"],
    )
    pages.append(
        admin_client.post(f"/admin/amocrm/account/{long_lived.pk}/test-connection/", follow=True)
    )

    # A secret typed into a form that fails validation is not echoed back.
    form_page = admin_client.post(
        f"/admin/amocrm/account/{account.pk}/change/",
        {"name": account.name, "base_url": "not a url", "client_secret": TYPED_SECRET},
    )
    assert form_page.status_code == 200
    assert form_page.context["errors"]
    pages.append(form_page)
    return [page.content.decode() for page in pages]


def admin_pages(admin_client) -> list[str]:
    """Every changelist and change page of the accounts, tokens and the audit trail."""
    contents = []
    for app_label, model_name, model in ADMIN_MODELS:
        base = f"/admin/{app_label}/{model_name}/"
        paths = [base] + [
            f"{base}{pk}/change/" for pk in model.objects.values_list("pk", flat=True)
        ]
        if model is Account:
            paths += [f"{base}{pk}/history/" for pk in model.objects.values_list("pk", flat=True)]
        for path in paths:
            response = admin_client.get(path)
            assert response.status_code == 200, path
            contents.append(response.content.decode())
    return contents


def test_no_secret_appears_in_logs_admin_pages_or_audit_rows(
    admin_client, new_account, emulator, caplog, json_log
):
    caplog.set_level(logging.DEBUG)

    seen_pages = account_lifecycle(admin_client, new_account, emulator)
    pages = seen_pages + admin_pages(admin_client)

    secrets = issued_secrets(emulator, new_account)
    api_calls = json.dumps(list(ApiCallRecord.objects.values()), default=str)
    attempts = json.dumps(list(DeliveryAttempt.objects.values()), default=str)
    places = {
        "captured log records": caplog.text,
        "log record arguments": json.dumps([r.args for r in caplog.records], default=str),
        "JSON log output": json_log.getvalue(),
        "admin pages": "\n".join(pages),
        "ApiCallRecord rows": api_calls,
        "DeliveryAttempt rows": attempts,
    }
    leaks = [
        f"{secret[:12]}... in {place}"
        for place, text in places.items()
        for secret in secrets
        if secret in text
    ]
    assert leaks == []
    # The places were not empty: the cycle was logged, paged and recorded.
    assert "amocrm token refreshed" in json_log.getvalue()
    assert ApiCallRecord.objects.filter(request_url__endswith="/oauth2/access_token").count() >= 4
    assert DeliveryAttempt.objects.count() >= 5


def test_admin_shows_whether_secrets_are_set(admin_client, emulator_account):
    Account.objects.filter(pk=emulator_account.pk).update(long_lived_token="long-lived-value")

    content = admin_client.get(f"/admin/amocrm/account/{emulator_account.pk}/change/").content

    assert b"<label>Client secret set:</label>" in content
    assert b"<label>Long-lived token set:</label>" in content
    assert content.count(b'alt="True"') == 2
    assert b"long-lived-value" not in content
    assert b"emulator-secret" not in content


def test_token_page_shows_expiry_and_whether_a_refresh_token_is_set(admin_client, emulator_account):
    token = Token.objects.get(account=emulator_account)

    content = admin_client.get(f"/admin/amocrm/token/{token.pk}/change/").content.decode()

    assert "<label>Refresh token set:</label>" in content
    assert 'alt="True"' in content
    assert token.access_token not in content
    assert token.refresh_token not in content


def test_authorization_code_is_not_stored_in_the_audit_trail(admin_client, new_account, emulator):
    callback = consent_answer(connect_start(admin_client, new_account))
    code = query(callback)["code"]

    admin_client.get(callback)

    record = ApiCallRecord.objects.get(account=new_account)
    assert record.request_body == {
        "grant_type": "authorization_code",
        "client_id": "emulator-client",
    }
    assert code not in json.dumps(list(ApiCallRecord.objects.values()), default=str)


def test_json_log_of_a_refused_callback_names_the_path_not_the_code(
    admin_client, new_account, json_log
):
    callback = consent_answer(connect_start(admin_client, new_account))
    code = query(callback)["code"]  # not spent: the state is forged, so still valid

    admin_client.get(with_query(callback, state="forged"))

    entries = [json.loads(line) for line in json_log.getvalue().splitlines()]
    (entry,) = [e for e in entries if e["logger"] == "django.request"]
    assert entry["message"] == "Bad Request: /amocrm/oauth/callback/"
    assert entry["request"] == "GET /amocrm/oauth/callback/"
    assert code not in json_log.getvalue()


def test_oauth_libraries_do_not_log_token_exchanges_even_at_debug(caplog):
    caplog.set_level(logging.DEBUG)

    for name in ("requests_oauthlib.oauth2_session", "oauthlib.oauth2"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
