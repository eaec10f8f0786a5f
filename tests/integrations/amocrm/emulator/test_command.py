"""``manage.py amocrm_emulator``: options reach the server; it prints where it listens."""

from io import StringIO

from django.core.management import call_command

from integrations.amocrm.emulator.server import EmulatorServer


def test_command_prints_the_base_url_and_registers_the_access_token(monkeypatch):
    seen = {}

    def serve_once(server):
        seen["state"] = server.state
        server.stop()

    monkeypatch.setattr(EmulatorServer, "serve_forever", serve_once)
    out = StringIO()

    call_command(
        "amocrm_emulator",
        "--port=0",
        "--subdomain=demo",
        "--rate-limit=0",
        "--strict-refresh",
        "--access-token=demo-token",
        stdout=out,
    )

    state = seen["state"]
    assert "AmoCRM emulator at http://127.0.0.1:" in out.getvalue()
    assert state.access_token_valid("demo-token")
    assert state.account["subdomain"] == "demo"
    assert state.config.strict_refresh is True
    assert state.config.rate_limit == 0
