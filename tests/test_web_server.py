"""The web server's own wiring: the lean chain for the intake's paths, the admin's prefix."""

import importlib

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import clear_url_caches, resolve

from hub import wsgi
from integrations.sync.models import InboundEvent


def _call(application, request) -> tuple[str, dict]:
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    b"".join(application(request.environ, start_response))
    return answer["status"], answer["headers"]


@pytest.fixture
def application(db):
    # As Django's test client does: a request must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield wsgi._dispatcher(wsgi.get_wsgi_application(), wsgi.LeanHandler(), ("/zdrav/",))
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_intake_path_is_served_without_the_admins_middleware(application, booked_body, enqueued):
    request = RequestFactory().post("/zdrav/booked", booked_body, content_type="application/json")

    with CaptureQueriesContext(connection) as queries:
        status, headers = _call(application, request)

    assert status.startswith("200")
    assert InboundEvent.objects.count() == 1
    # No account time zone read, no session touched, no frame options for a browser.
    assert not [q for q in queries if "amocrm_account" in q["sql"]]
    assert "Vary" not in headers
    assert "X-Frame-Options" not in headers


def test_other_paths_keep_the_full_chain(application):
    status, headers = _call(application, RequestFactory().get("/admin/"))

    assert status.startswith("302")
    assert headers["X-Frame-Options"] == "DENY"


def test_admin_is_served_under_hub_admin_path(settings):
    settings.HUB_ADMIN_PATH = "ops-7f3a/"
    try:
        clear_url_caches()
        importlib.reload(importlib.import_module(settings.ROOT_URLCONF))

        assert resolve("/ops-7f3a/login/").url_name == "login"
        assert resolve("/admin/login/").url_name == "intake"  # only a flow could be there
    finally:
        settings.HUB_ADMIN_PATH = "admin/"
        importlib.reload(importlib.import_module(settings.ROOT_URLCONF))
        clear_url_caches()
