"""What reaches the access logs (nginx's and gunicorn's), and what the templates render.

No OAuth code, no state, no intake token, in either log: only ``***`` in their place.
"""

import logging
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config
from gunicorn.glogging import Logger

from hub.gunicorn_logging import ScrubbingLogger, _plain_handlers, uri_scrub
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


def _logger(access_log_format: str) -> ScrubbingLogger:
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", access_log_format)
    return ScrubbingLogger(config)


# The format hub/gunicorn.conf.py sets.
GUNICORN_FORMAT = next(
    line.split("=", 1)[1].strip().strip("'")
    for line in (Path(__file__).resolve().parents[2] / "hub" / "gunicorn.conf.py")
    .read_text()
    .splitlines()
    if line.startswith("access_log_format")
)
ENVIRON = {
    "REMOTE_ADDR": "203.0.113.9",
    "REQUEST_METHOD": "POST",
    "RAW_URI": "/zdrav/booked/SECRET?token=SECRET",
    "PATH_INFO": "/zdrav/booked/SECRET",
    "QUERY_STRING": "token=SECRET",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_REFERER": "https://rdesk.example.ru/zdrav/booked/SECRET",
    "HTTP_USER_AGENT": "RDESK",
    "HTTP_X_CUSTOM": "x",
}
ANSWER = SimpleNamespace(status="200 OK", sent=17, headers=[("Content-Type", "application/json")])
REQUEST = SimpleNamespace(
    headers=[("REFERER", ENVIRON["HTTP_REFERER"]), ("USER-AGENT", "RDESK"), ("X-CUSTOM", "x")]
)
TOOK = timedelta(seconds=1, microseconds=2345)


def test_the_hubs_format_builds_gunicorns_own_line_atoms_scrubbed():
    logger = _logger(GUNICORN_FORMAT)

    lean = logger.atoms(ANSWER, REQUEST, ENVIRON, TOOK)
    full = Logger.atoms(logger, ANSWER, REQUEST, ENVIRON, TOOK)

    assert "{x-custom}i" not in lean
    for key in "hlsmHbBaTDMLp":
        assert lean[key] == full[key], key
    assert lean["r"] == "POST /zdrav/booked/***?token=*** HTTP/1.1"
    assert lean["f"] == "https://rdesk.example.ru/zdrav/booked/***"
    assert "SECRET" not in str(lean)


def test_a_format_naming_a_header_gets_every_atom_scrubbed():
    logger = _logger('%(h)s "%(r)s" %(t)s "%({referer}i)s" %({x-custom}i)s')

    atoms = logger.atoms(ANSWER, REQUEST, ENVIRON, TOOK)

    assert atoms["{x-custom}i"] == "x"
    assert atoms["t"].startswith("[")
    assert atoms["r"] == "POST /zdrav/booked/***?token=*** HTTP/1.1"
    assert atoms["{referer}i"] == "https://rdesk.example.ru/zdrav/booked/***"


@pytest.fixture
def file_logger(monkeypatch):
    """A hub logger writing its access lines to a file, as gunicorn sets it up; other
    handlers on the shared ``gunicorn.access`` logger (pytest's) are set aside."""

    def make(path: Path) -> ScrubbingLogger:
        config = Config()
        config.set("accesslog", str(path))
        config.set("access_log_format", GUNICORN_FORMAT)
        logger = ScrubbingLogger(config)
        handlers = logger.access_log.handlers
        ours = [h for h in handlers if getattr(h, "baseFilename", "") == str(path)]
        monkeypatch.setattr(logger.access_log, "handlers", ours)
        return logger

    return make


def test_the_line_written_straight_is_the_line_logging_writes(tmp_path, file_logger):
    straight, through_logging = tmp_path / "straight.log", tmp_path / "logging.log"
    logger = file_logger(straight)
    assert _plain_handlers(logger.access_log) is not None  # the straight way is taken

    logger.access(ANSWER, REQUEST, ENVIRON, TOOK)
    Logger.access(file_logger(through_logging), ANSWER, REQUEST, ENVIRON, TOOK)

    assert straight.read_text() == through_logging.read_text()
    assert '"POST /zdrav/booked/***?token=*** HTTP/1.1" 200 17' in straight.read_text()


def test_a_handler_with_a_filter_gets_the_line_through_logging(tmp_path, file_logger):
    path = tmp_path / "access.log"
    logger = file_logger(path)
    logger.access_log.handlers[0].addFilter(lambda record: False)  # an operator's filter

    logger.access(ANSWER, REQUEST, ENVIRON, TOOK)

    assert path.read_text() == ""


def test_a_handler_with_a_formatter_of_its_own_gets_the_line_through_logging(tmp_path, file_logger):
    class Tagged(logging.Formatter):
        def format(self, record):
            return "tagged " + super().format(record)

    path = tmp_path / "access.log"
    logger = file_logger(path)
    logger.access_log.handlers[0].setFormatter(Tagged("%(message)s"))

    logger.access(ANSWER, REQUEST, ENVIRON, TOOK)

    assert path.read_text().startswith("tagged 203.0.113.9 ")
