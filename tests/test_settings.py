"""Start-up: production names what it lacks, the embedded mode needs nothing, HTTPS is on.

The settings module is run afresh with a chosen environment (``runpy``), or a real
``manage.py`` is started where what matters is what an operator sees.
"""

import os
import runpy
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import environ
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from hub.encryption import secret_decrypt, secret_encrypt
from hub.secrets_init import SECRET_FILES, secrets_create

BASE_DIR = Path(settings.BASE_DIR)
SETTINGS_FILE = BASE_DIR / "hub" / "settings.py"
POSTGRES = "postgres://amohub@postgres:5432/amohub"
# Everything the settings read that the test run itself sets (tests/backends.py).
CLEARED = (
    "DATABASE_URL",
    "SECRET_KEY",
    "HUB_ENCRYPTION_KEYS",
    "HUB_SECRETS_DIR",
    "HUB_HTTPS",
    "NGX_SERVER_NAME",
    "HOST_PORT",
    "CSRF_TRUSTED_ORIGINS",
    "ALLOWED_HOSTS",
)


def production_env(**changes) -> dict[str, str]:
    return {
        "DATABASE_URL": POSTGRES,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "NGX_SERVER_NAME": "hub.example.ru",
        "ALLOWED_HOSTS": "hub.example.ru",
        **changes,
    }


@pytest.fixture
def load(monkeypatch):
    """``load(**env)``: the settings module's values under exactly that environment."""

    # A developer's .env would fill in what the test leaves out.
    monkeypatch.setattr(environ.Env, "read_env", lambda *args, **kwargs: None)

    def load(**variables):
        for name in CLEARED:
            monkeypatch.delenv(name, raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))

    return load


def manage(*args: str, **environ) -> subprocess.CompletedProcess:
    """``manage.py`` run with only ``environ`` set (nothing of the test run's own)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={"PATH": os.environ["PATH"], "LOG_LEVEL": "WARNING", **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- Production: what it lacks is named ------------------------------------------------


def test_production_without_secrets_stops_naming_each_and_how_to_create_it():
    started = manage("check", DATABASE_URL=POSTGRES)

    assert started.returncode != 0
    error = started.stderr.strip().splitlines()[-1]
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: Production mode")
    assert "SECRET_KEY is not set" in error
    assert "secrets.token_urlsafe(50)" in error
    assert "HUB_ENCRYPTION_KEYS is not set" in error
    assert "Fernet.generate_key()" in error
    assert "python -m hub.secrets_init DIR" in error


def test_production_refuses_the_embedded_secret_key(load):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        load(**production_env(SECRET_KEY="embedded-mode-only-not-a-secret"))


def test_a_malformed_encryption_key_is_named_without_echoing_it(load):
    keys = f"{Fernet.generate_key().decode()},not-a-fernet-key"

    with pytest.raises(ImproperlyConfigured, match="key 2 of 2 is not a Fernet key") as error:
        load(**production_env(HUB_ENCRYPTION_KEYS=keys))
    assert "not-a-fernet-key" not in str(error.value)


def test_production_settings_pass_check_deploy_with_no_warning():
    checked = manage("check", "--deploy", **production_env(HOST_PORT="9000"))

    assert checked.returncode == 0, checked.stderr
    assert "(security." not in checked.stdout + checked.stderr


# --- The embedded mode: nothing to set up -----------------------------------------------


def test_the_embedded_mode_starts_with_no_environment():
    assert manage("check").returncode == 0


def test_the_embedded_mode_serves_plain_http(load):
    embedded = load()

    assert embedded["EMBEDDED"] is True
    assert embedded["SECRET_KEY"] == "embedded-mode-only-not-a-secret"
    assert embedded["SECURE_SSL_REDIRECT"] is False
    assert embedded["SESSION_COOKIE_SECURE"] is False
    assert embedded["CSRF_COOKIE_SECURE"] is False
    assert embedded["SECURE_HSTS_SECONDS"] == 0


def test_the_embedded_encryption_key_is_generated_once_and_reused(tmp_path):
    key_file = tmp_path / "var" / "encryption.key"
    with override_settings(HUB_ENCRYPTION_KEYS=[], HUB_ENCRYPTION_KEY_FILE=key_file):
        stored = secret_encrypt("client-secret")
        key = key_file.read_text()

        assert secret_decrypt(stored) == "client-secret"
        assert secret_decrypt(secret_encrypt("again")) == "again"
    assert key_file.read_text() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


# --- HTTPS behind nginx ----------------------------------------------------------------


def test_production_turns_https_on(load):
    production = load(**production_env())

    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["CSRF_COOKIE_SECURE"] is True
    assert production["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_hsts_is_tunable(load):
    production = load(**production_env(SECURE_HSTS_SECONDS="3600", SECURE_HSTS_PRELOAD="false"))

    assert production["SECURE_HSTS_SECONDS"] == 3600
    assert production["SECURE_HSTS_PRELOAD"] is False


@pytest.mark.parametrize(
    ("port", "origin"),
    [("9000", "https://hub.example.ru:9000"), ("443", "https://hub.example.ru")],
)
def test_csrf_trusts_the_public_origin_nginx_serves(load, port, origin):
    assert load(**production_env(HOST_PORT=port))["CSRF_TRUSTED_ORIGINS"] == [origin]


def test_csrf_trusted_origins_set_by_hand_are_kept(load):
    production = load(**production_env(CSRF_TRUSTED_ORIGINS="https://admin.example.ru"))

    assert production["CSRF_TRUSTED_ORIGINS"] == ["https://admin.example.ru"]


@pytest.fixture
def https_redirect(load, settings):
    production = load(**production_env())
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = production["SECURE_REDIRECT_EXEMPT"]


def test_plain_http_to_the_admin_is_redirected_to_https(client, https_redirect):
    answer = client.get("/admin/login/")

    assert answer.status_code == 301
    assert answer["Location"] == "https://testserver/admin/login/"


def test_the_admin_through_nginx_is_not_redirected(client, db, https_redirect):
    assert client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_checks_and_metrics_over_plain_http_are_not_redirected(
    client, db, https_redirect, path
):
    assert client.get(path).status_code != 301


# --- The secrets directory: an old .env keeps working -----------------------------------


@pytest.mark.parametrize(
    "database_url", [POSTGRES, "postgres://amohub:@postgres:5432/amohub"], ids=["none", "empty"]
)
def test_the_secrets_directory_supplies_what_the_environment_lacks(load, tmp_path, database_url):
    secrets_create(tmp_path)
    stored = {name: (tmp_path / name).read_text().strip() for name in SECRET_FILES}

    production = load(DATABASE_URL=database_url, HUB_SECRETS_DIR=str(tmp_path))

    assert production["SECRET_KEY"] == stored["secret_key"]
    assert production["HUB_ENCRYPTION_KEYS"] == [stored["encryption_keys"]]
    assert production["DATABASES"]["default"]["PASSWORD"] == stored["postgres_password"]


def test_the_environment_wins_over_the_secrets_directory(load, tmp_path):
    secrets_create(tmp_path)
    environ = production_env(DATABASE_URL="postgres://amohub:from-env@postgres:5432/amohub")

    production = load(**environ, HUB_SECRETS_DIR=str(tmp_path))

    assert production["SECRET_KEY"] == environ["SECRET_KEY"]
    assert production["DATABASES"]["default"]["PASSWORD"] == "from-env"


def test_secrets_init_creates_the_missing_files_once_and_prints_only_their_names(tmp_path):
    (tmp_path / "secret_key").write_text("kept-from-before\n")
    command = [sys.executable, "-m", "hub.secrets_init", str(tmp_path)]

    first = subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, check=True)
    again = subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, check=True)

    assert first.stdout.split() == ["encryption_keys", "postgres_password"]
    assert again.stdout == ""
    assert (tmp_path / "secret_key").read_text() == "kept-from-before\n"
    for name in ("encryption_keys", "postgres_password"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_secrets_init_needs_neither_the_settings_nor_a_database(tmp_path):
    # Run where production would refuse to start: no secret set, a database not there.
    created = subprocess.run(
        [sys.executable, "-m", "hub.secrets_init", str(tmp_path)],
        cwd=BASE_DIR,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": "postgres://nobody@192.0.2.1/none"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert created.returncode == 0, created.stderr
    assert sorted(created.stdout.split()) == sorted(SECRET_FILES)
