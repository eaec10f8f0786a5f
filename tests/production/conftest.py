"""The production path's servers, started once for tests/production/ (see edge.py)."""

import pytest
import requests

from tests.production.edge import Gunicorn, Mirror, Nginx, certificate_make, free_port, render


@pytest.fixture(scope="package")
def edge_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="package")
def certificate(edge_dir):
    return certificate_make(edge_dir)


@pytest.fixture(scope="package")
def hub(django_db_setup, django_db_blocker, edge_dir):
    with django_db_blocker.unblock():
        server = Gunicorn(edge_dir)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def mirror():
    receiver = Mirror()
    yield receiver
    receiver.stop()


def _variables(edge_dir, certificate, hub, name: str, **overrides) -> dict:
    cert, key = certificate
    return {
        "NGX_PORT": str(free_port()),
        "NGX_SERVER_NAME": "localhost",
        "KEEPALIVE_TIMEOUT": "60",
        "NGX_RESOLVER": "127.0.0.1",
        "HUB_UPSTREAM": f"127.0.0.1:{hub.port}",
        "SSL_CERT": str(cert),
        "SSL_KEY": str(key),
        "NGX_ACCESS_LOG": str(edge_dir / f"{name}-access.log"),
        **overrides,
    }


@pytest.fixture(scope="package")
def mirroring_nginx(edge_dir, certificate, hub, mirror):
    variables = _variables(
        edge_dir, certificate, hub, "mirror", MIRROR_ZDRAV="1", MIRROR_TARGET=mirror.url
    )
    server = Nginx(edge_dir / "mirror", render("nginx.mirror-template.conf", **variables))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def plain_nginx(edge_dir, certificate, hub):
    # The legacy .env's template, with limits small enough to pass in a test.
    variables = _variables(
        edge_dir, certificate, hub, "plain", NGX_LIMIT_RATE="1r/s", NGX_LIMIT_BURST="1"
    )
    server = Nginx(edge_dir / "plain", render("nginx.conf.template", **variables))
    yield server
    server.stop()


def post(server, path: str, body: bytes, certificate, session=None) -> requests.Response:
    """POSTs JSON over TLS to the nginx under test, checking its certificate."""
    return (session or requests).post(
        f"https://localhost:{server.port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        verify=str(certificate[0]),
        timeout=5,
    )
