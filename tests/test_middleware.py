"""The hub speaks Russian in Moscow time unless a person chose otherwise."""

import pytest
from django.conf import settings
from django.utils import timezone

from hub.middleware import AccountTimezoneMiddleware
from tests.factories import AccountFactory


@pytest.fixture
def russian(settings):
    settings.LANGUAGE_CODE = "ru"


def test_the_admin_speaks_russian_whatever_the_browser_asks(russian, client, db):
    response = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert response.headers["Content-Language"] == "ru"
    assert "Имя пользователя" in response.content.decode()


def test_a_chosen_language_is_kept(russian, client, db):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.get("/admin/login/")

    assert response.headers["Content-Language"] == "en"
    assert "Username" in response.content.decode()


def test_the_language_switch_sets_the_cookie(russian, client, db):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/admin/login/"})

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"


def zone_seen_by_a_view(rf) -> str:
    middleware = AccountTimezoneMiddleware(lambda request: timezone.get_current_timezone_name())
    return middleware(rf.get("/admin/"))


def test_dates_are_shown_in_the_accounts_time_zone(rf, db):
    AccountFactory(timezone="Asia/Yekaterinburg")

    assert zone_seen_by_a_view(rf) == "Asia/Yekaterinburg"


def test_without_an_account_dates_are_in_moscow_time(rf, db):
    assert zone_seen_by_a_view(rf) == "Europe/Moscow"


def test_an_unknown_zone_falls_back_to_moscow(rf, db):
    AccountFactory(timezone="Mars/Olympus")

    assert zone_seen_by_a_view(rf) == "Europe/Moscow"
