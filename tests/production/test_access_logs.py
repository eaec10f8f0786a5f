"""What reaches the access logs (nginx's and gunicorn's), and what the templates render.

No OAuth code, no state, no intake token, in either log: only ``***`` in their place.
"""

import time

import pytest
import requests

from hub.gunicorn_logging import uri_scrub
from tests.production.conftest import post
from tests.production.edge import render


@pytest.mark.nginx
# What gunicorn stores (a refused request is stored) is flushed after the test.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_access_logs_of_nginx_and_gunicorn_hold_no_token_or_oauth_code(
    mirroring_nginx, hub, edge_dir, certificate
):
    # Followed to the admin's login page, whose ?next= carries the whole query, encoded.
    requests.get(
        f"https://localhost:{mirroring_nginx.port}/amocrm/oauth/callback/"
        "?code=SECRETCODE&state=SECRETSTATE&referer=clinic.amocrm.ru",
        verify=str(certificate[0]),
        timeout=5,
    )
    post(mirroring_nginx, "/zdrav/booked/SECRETTOKEN?token=SECRETTOKEN", b"[]", certificate)
    time.sleep(0.2)  # gunicorn and nginx write their lines after answering

    nginx_log = (edge_dir / "mirror-access.log").read_text()
    gunicorn_log = hub.access_log.read_text()
    assert '"GET /amocrm/oauth/callback/?*** HTTP/1.1" 302' in nginx_log
    assert '"POST /zdrav/booked/***?*** HTTP/1.1"' in nginx_log
    assert "/amocrm/oauth/callback/?code=***&state=***&referer=clinic.amocrm.ru" in gunicorn_log
    assert "/zdrav/booked/***?token=***" in gunicorn_log
    assert "SECRET" not in nginx_log
    assert "SECRET" not in gunicorn_log


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        ("/zdrav/booked", "/zdrav/booked"),
        ("/zdrav/booked/tok-123?x=1", "/zdrav/booked/***?x=1"),
        ("/zdrav/mc?Token=abc&x=1", "/zdrav/mc?Token=***&x=1"),
        ("/hooks/booked/" + "t" * 43 + "?x=1", "/hooks/booked/***?x=1"),
        ("/amocrm/oauth/callback/?state=s&code=c", "/amocrm/oauth/callback/?state=***&code=***"),
        (
            "/admin/login/?next=/amocrm/oauth/callback/%3Fcode%3Dc1%26state%3Ds1",
            "/admin/login/?next=/amocrm/oauth/callback/%3Fcode%3D***%26state%3D***",
        ),
        ("/admin/sync/flow/3/change/?_changelist_filters=q", "/admin/sync/flow/3/change/"
         "?_changelist_filters=q"),
    ],
)  # fmt: skip
def test_gunicorn_logger_scrubs_tokens_and_codes_and_keeps_the_rest(uri, logged):
    assert uri_scrub(uri) == logged


def test_both_templates_render_from_the_legacy_env_values_alone():
    legacy = {"NGX_PORT": "6000", "NGX_SERVER_NAME": "domain.example.ru", "KEEPALIVE_TIMEOUT": "60"}
    target = {"MIRROR_TARGET": "https://mirror-domain.example.ru", "NGX_RESOLVER": "127.0.0.11"}

    plain = render("nginx.conf.template", **legacy, **target)
    mirrored = render("nginx.mirror-template.conf", **legacy, **target, MIRROR_ZDRAV="1")

    for rendered in (plain, mirrored):
        assert "limit_req zone=amohub_zdrav burst=100 nodelay;" in rendered
        assert "rate=50r/s;" in rendered
        assert "ssl_certificate     /etc/nginx/ssl/fullchain.pem;" in rendered
        assert "location /admin/ {\n        allow all;" in rendered
    assert "mirror /_amohub_mirror_zdrav;" in mirrored


def test_admin_allow_list_renders_allow_rules_then_deny():
    rendered = render(
        "nginx.conf.template",
        NGX_PORT="6000",
        NGX_SERVER_NAME="domain.example.ru",
        KEEPALIVE_TIMEOUT="60",
        NGX_RESOLVER="127.0.0.11",
        NGX_ADMIN_ALLOW="10.0.0.0/8, 192.168.1.7",
        HUB_ADMIN_PATH="ops-7f3a",
    )

    assert "location /ops-7f3a/ {\n        allow 10.0.0.0/8; allow 192.168.1.7; deny all;" in (
        rendered
    )
    assert rendered.count("deny all;") == 2  # the admin and /amocrm/


@pytest.mark.parametrize(
    ("name", "value"),
    [("NGX_LIMIT_RATE", "fast"), ("NGX_LIMIT_BURST", "0"), ("NGX_ADMIN_ALLOW", "10.0.0.0/8;x")],
)
def test_a_bad_limit_or_allow_list_stops_the_render_naming_it(name, value):
    variables = {"NGX_PORT": "6000", "NGX_SERVER_NAME": "d.example.ru", "KEEPALIVE_TIMEOUT": "60"}

    with pytest.raises(RuntimeError, match=name):
        render("nginx.conf.template", NGX_RESOLVER="127.0.0.11", **variables, **{name: value})


def test_django_request_errors_are_logged_without_the_path_token(rf):
    import logging

    from hub.logging import JsonFormatter

    request = rf.post("/zdrav/booked/SECRETTOKEN")
    record = logging.makeLogRecord(
        {
            "name": "django.request",
            "msg": "Internal Server Error: %s",
            "args": (request.path,),
            "request": request,
        }
    )

    line = JsonFormatter().format(record)

    assert "SECRETTOKEN" not in line
    assert "/zdrav/booked/***" in line
