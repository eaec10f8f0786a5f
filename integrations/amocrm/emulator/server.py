"""A threaded HTTP server around the emulator app, for tests and the demo.

    with EmulatorServer() as emulator:          # port 0: the OS picks a free port
        requests.get(emulator.base_url + "/api/v4/account", headers=...)

The socket is bound in the constructor, so ``base_url`` is known before ``start()``.
"""

from __future__ import annotations

import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .app import EmulatorApp
from .state import EmulatorConfig, State

_DEFAULTS = EmulatorConfig()
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind resolves socket.getfqdn(host), a reverse DNS lookup that
        # can stall for seconds; the emulator never needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class EmulatorServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str = _DEFAULTS.client_id,
        client_secret: str = _DEFAULTS.client_secret,
        redirect_uri: str = _DEFAULTS.redirect_uri,
        subdomain: str = _DEFAULTS.subdomain,
        rate_limit: int = _DEFAULTS.rate_limit,
        strict_refresh: bool = _DEFAULTS.strict_refresh,
        access_token_lifetime: int = _DEFAULTS.access_token_lifetime,
        access_token: str | None = None,
        log_requests: bool = False,
    ):
        config = EmulatorConfig(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            subdomain=subdomain,
            rate_limit=rate_limit,
            strict_refresh=strict_refresh,
            access_token_lifetime=access_token_lifetime,
            access_token=access_token,
        )
        handler = WSGIRequestHandler if log_requests else _QuietHandler
        # The app needs the state and the state needs the bound port for its links,
        # so the server starts with a placeholder app and gets the real one below.
        self._server = make_server(
            host, port, lambda environ, start: [], _ThreadingWSGIServer, handler
        )
        bound_host, bound_port = self._server.server_address[:2]
        link_host = "127.0.0.1" if bound_host in _ANY_ADDRESS else bound_host
        self.base_url = f"http://{link_host}:{bound_port}"
        self.state = State(config, self.base_url)
        self._server.set_app(EmulatorApp(self.state))
        self._thread: threading.Thread | None = None

    def start(self) -> EmulatorServer:
        """Serves in a daemon thread; returns self."""
        # stop() waits up to one poll interval; tests start and stop a server per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="amocrm-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serves in the calling thread until interrupted (the management command)."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
