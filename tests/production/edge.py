"""The production path on loopback: a self-signed certificate, Debian's nginx with a
rendered template, the hub's gunicorn (hub/gunicorn.conf.py) and a mirror receiver.

Everything runs as child processes or threads of the test run, in a temporary folder,
on free ports above 1024: no root and nothing of the machine's nginx set-up is needed.
"""

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.backends import NGINX
from tests.workers import _database_url

PROJECT = Path(__file__).resolve().parents[2]
ENTRYPOINT = PROJECT / "nginx" / "entrypoint.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}:\n{log.read_text()}") from None
            time.sleep(0.05)


def certificate_make(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (chain, key)."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-days", "1", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class Gunicorn:
    """The hub's gunicorn on the test database, as production starts it."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.access_log = folder / "gunicorn-access.log"
        self.log = folder / "gunicorn.log"
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": os.environ["HUB_TEST_REDIS_URL"],
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_ACCESS_LOG": str(self.access_log),
            "HUB_TRUST_X_FORWARDED_FOR": "true",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "hub/gunicorn.conf.py"],
                cwd=PROJECT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def render(template: str, **variables: str) -> str:
    """nginx/entrypoint.sh --render-only with these variables (and only these)."""
    env = {"PATH": os.environ["PATH"], "NGX_TEMPLATE_CONF": f"./nginx/{template}", **variables}
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "--render-only"], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout


def _nginx_version() -> tuple[int, ...]:
    text = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr
    return tuple(int(n) for n in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text).groups())


class Nginx:
    """Debian's nginx in the foreground with one rendered template, in its own prefix."""

    def __init__(self, folder: Path, rendered: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        if _nginx_version() < (1, 25, 1):
            # Debian 12's nginx 1.22 predates the `http2` directive (the image has 1.27).
            rendered = rendered.replace("    http2 on;\n", "")
            rendered = re.sub(r"(listen \d+ ssl);", r"\1 http2;", rendered)
        (folder / "default.conf").write_text(rendered)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n{temp}\n    include {folder / 'default.conf'};\n}}\n"
        )
        self.log = folder / "error.log"
        self.log.touch()
        self.port = int(re.search(r"listen (\d+)", rendered).group(1))
        self.process = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"),
             "-e", str(self.log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )  # fmt: skip
        _wait_for_port(self.port, self.process, self.log, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Mirror:
    """A tiny HTTP receiver recording every request's method, path and body."""

    def __init__(self):
        self.port = free_port()
        self.received: list[tuple[str, str, bytes]] = []
        self._server = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.command, self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_PATCH = _record

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received
