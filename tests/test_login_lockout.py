"""Admin login throttling: a user name is locked out from an address after failed logins."""

import pytest
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

LOGIN = "/admin/login/"
PASSWORD = "correct-horse-battery"
LIMIT = 5


@pytest.fixture
def staff(db):
    return UserFactory(username="reception")


def login(client, password: str, *, address: str = "198.51.100.7", forwarded: str = ""):
    headers = {"REMOTE_ADDR": address}
    if forwarded:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(
        LOGIN, {"username": "reception", "password": password, "next": "/admin/"}, **headers
    )


def fail(client, times: int = LIMIT, **where):
    return [login(client, "wrong", **where) for _ in range(times)][-1]


def test_the_fifth_wrong_password_locks_the_login_with_a_russian_message(client, staff, settings):
    settings.LANGUAGE_CODE = "ru"

    assert fail(client, LIMIT - 1).status_code == 200  # the form again, with its error
    locked = login(client, "wrong")

    assert locked.status_code == 429
    content = locked.content.decode()
    assert "Учетная запись заблокирована: слишком много попыток входа." in content


def test_a_locked_login_refuses_the_right_password_too(client, staff):
    fail(client)

    assert login(client, PASSWORD).status_code == 429


def test_the_same_user_name_from_another_address_still_logs_in(client, staff):
    fail(client)

    assert login(client, PASSWORD, address="198.51.100.8").status_code == 302


def test_a_forwarded_address_from_an_untrusted_peer_does_not_escape_the_lockout(
    client, staff, settings
):
    settings.HUB_TRUST_X_FORWARDED_FOR = False
    for n in range(LIMIT):
        login(client, "wrong", forwarded=f"203.0.113.{n}")

    assert login(client, PASSWORD, forwarded="203.0.113.99").status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_locked_out(client, staff, settings):
    settings.HUB_TRUST_X_FORWARDED_FOR = False
    settings.HUB_TRUSTED_PROXIES = ["10.0.0.0/8"]
    fail(client, address="10.0.0.2", forwarded="203.0.113.9")

    assert login(client, PASSWORD, address="10.0.0.2", forwarded="203.0.113.9").status_code == 429
    assert login(client, PASSWORD, address="10.0.0.2", forwarded="203.0.113.10").status_code == 302


def test_a_successful_login_clears_the_failures(client, staff):
    fail(client, LIMIT - 1)
    assert login(client, PASSWORD).status_code == 302
    client.logout()

    assert fail(client, LIMIT - 1).status_code == 200


def test_axes_reset_lifts_the_lockout(client, staff):
    fail(client)

    call_command("axes_reset", verbosity=0)

    assert login(client, PASSWORD).status_code == 302


def test_login_attempts_are_shown_to_superusers_only(admin_client, hub_admin_client, staff):
    fail(Client())
    attempts = "/admin/axes/accessattempt/"

    assert admin_client.get(attempts).status_code == 200
    assert hub_admin_client.get(attempts).status_code == 403
    assert b"/admin/axes/" not in hub_admin_client.get("/admin/").content
