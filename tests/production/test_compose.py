"""docker-compose.yml accepts the old service's .env as it is, and a new one."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
LEGACY_ENV = PROJECT / "tests" / "fixtures" / "legacy.env"

pytestmark = pytest.mark.compose


def _config(tmp_path, env_text: str) -> dict:
    """`docker compose config` of the project's compose file with this .env (and only it)."""
    shutil.copy(PROJECT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text(env_text)
    compose = ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]
    result = subprocess.run(
        [*compose, "config"],
        cwd=tmp_path,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_the_old_env_without_secret_key_or_database_password_validates(tmp_path):
    services = _config(tmp_path, LEGACY_ENV.read_text())

    web = services["web"]
    assert web["environment"]["DATABASE_URL"] == "postgres://amohub:@postgres:5432/amohub"
    assert web["environment"]["HUB_SECRETS_DIR"] == "/run/amohub-secrets"
    assert web["depends_on"]["secrets"] == {"condition": "service_completed_successfully"}
    assert "hub.secrets_init" in services["secrets"]["command"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == ""
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert services["nginx"]["environment"]["NGX_TEMPLATE_CONF"] == "./nginx/nginx.conf.template"


def test_a_password_set_in_env_goes_into_the_url_and_the_database(tmp_path):
    env = LEGACY_ENV.read_text() + "\nSECRET_KEY=k\nPOSTGRES_PASSWORD=p4ss\n"

    services = _config(tmp_path, env)

    assert services["web"]["environment"]["DATABASE_URL"] == (
        "postgres://amohub:p4ss@postgres:5432/amohub"
    )
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "p4ss"
