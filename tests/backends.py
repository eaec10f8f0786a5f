"""Chooses the database and broker the suite runs against, before Django is set up.

Loaded as a pytest plugin (``-p tests.backends``) so it runs before pytest-django reads
the settings. Real PostgreSQL and Redis are used when reachable; otherwise the suite
falls back to SQLite and an in-memory broker and skips the tests that need the real
services, saying why. With ``HUB_REQUIRE_SERVICES=1`` (CI) a missing service is an error.
"""

import atexit
import os
import secrets
import shutil
import socket
import tempfile
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

# Each run gets its own database (pytest-django prefixes ``test_``) and its own Redis keys
# (broker queues and rate-limit windows), so two runs on one machine never meet.
RUN_ID = f"{os.getpid()}"
POSTGRES_URL = f"postgres://postgres@127.0.0.1:5432/amohub_{RUN_ID}"
REDIS_URL = "redis://127.0.0.1:6379/15"
REDIS_PREFIX = f"amohub-test-{RUN_ID}:"
CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
# Debian's nginx, for the tests of the production path (tests/production/).
NGINX = os.environ.get("HUB_TEST_NGINX", "/usr/sbin/nginx")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=1):
            return True
    except OSError:
        return False


def _choose() -> dict[str, str]:
    """Sets DATABASE_URL and HUB_TEST_REDIS_URL; returns the reasons for any fallback."""
    fallbacks = {}
    database_url = os.environ.get("DATABASE_URL", POSTGRES_URL)
    if database_url.startswith("postgres") and not _reachable(database_url):
        fallbacks["postgres"] = f"PostgreSQL at {urlsplit(database_url).netloc} is unreachable"
        database_url = "sqlite:///:memory:"
    elif not database_url.startswith("postgres"):
        fallbacks["postgres"] = f"DATABASE_URL is not PostgreSQL ({database_url.split(':')[0]})"
    os.environ["DATABASE_URL"] = database_url

    redis_url = os.environ.get("HUB_TEST_REDIS_URL", REDIS_URL)
    if not _reachable(redis_url):
        fallbacks["redis"] = f"Redis at {urlsplit(redis_url).netloc} is unreachable"
        redis_url = ""
    os.environ["HUB_TEST_REDIS_URL"] = redis_url
    os.environ.setdefault("HUB_REDIS_PREFIX", REDIS_PREFIX)
    # pytest-xdist's workers inherit the run's prefix: each gets its own below it (their
    # databases are apart already: pytest-django appends the worker's name).
    if worker := os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["HUB_REDIS_PREFIX"] = os.environ["HUB_REDIS_PREFIX"].rstrip(":") + f"-{worker}:"
    # The real broker when there is one, so end-to-end tests reach a real worker.
    os.environ.setdefault("CELERY_BROKER_URL", redis_url or "memory://")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A PostgreSQL URL is the production mode, which needs its secrets set; tests reach the
    # hub over plain HTTP (test client, live server), so no HTTPS redirect or secure cookies.
    os.environ.setdefault("SECRET_KEY", f"test-only-{secrets.token_urlsafe(50)}")
    os.environ.setdefault("HUB_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("HUB_HTTPS", "false")
    # Metrics files of this run's processes (the suite and its workers), removed after it.
    metrics_dir = tempfile.mkdtemp(prefix=f"amohub-metrics-{RUN_ID}-")
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if not shutil.which(CHROMIUM):
        fallbacks["chromium"] = f"Chromium is not installed at {CHROMIUM}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            fallbacks["chromium"] = "the playwright package is not installed"
    for name, program in (("nginx", NGINX), ("openssl", "openssl")):
        if not shutil.which(program):
            fallbacks[name] = f"{program} is not installed (make test installs Debian's nginx)"
    if not shutil.which("docker-compose") and not shutil.which("docker"):
        fallbacks["compose"] = "neither docker-compose nor docker (compose plugin) is installed"
    return fallbacks


FALLBACKS = _choose()
REQUIRED = os.environ.get("HUB_REQUIRE_SERVICES") == "1"


def pytest_configure(config):
    if REQUIRED and FALLBACKS:
        raise pytest.UsageError("HUB_REQUIRE_SERVICES=1 but: " + "; ".join(FALLBACKS.values()))


def pytest_report_header(config):
    database = os.environ["DATABASE_URL"].split("://")[0]
    redis = os.environ["HUB_TEST_REDIS_URL"] or "none (in-memory broker)"
    return [f"amo-hub backends: database={database}, redis={redis}"]


def pytest_collection_modifyitems(config, items):
    needs = {
        "postgres": ("postgres",),
        "redis": ("redis",),
        "worker": ("postgres", "redis"),
        "browser": ("chromium",),
        "nginx": ("postgres", "redis", "nginx", "openssl"),
        "compose": ("compose",),
    }
    for item in items:
        for marker, services in needs.items():
            if item.get_closest_marker(marker) is None:
                continue
            missing = [FALLBACKS[s] for s in services if s in FALLBACKS]
            if missing:
                item.add_marker(pytest.mark.skip(reason="; ".join(missing)))


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if FALLBACKS:
        terminalreporter.section("amo-hub: services not available")
        for reason in FALLBACKS.values():
            terminalreporter.write_line(f"- {reason}")
        terminalreporter.write_line(
            f"{len(skipped)} test(s) skipped for it; run with PostgreSQL, Redis and Chromium "
            "for all."
        )
