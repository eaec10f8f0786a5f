"""Shared fixtures: sample payloads, seeded flows, an account with a token, the emulator."""

import asyncio
import io
import json
import logging
import threading
from pathlib import Path

import pytest

from hub.logging import JsonFormatter
from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.tokens import token_store
from integrations.sync.models import FieldMapping, Flow
from tests.factories import AccountFactory, TokenFactory, UserFactory
from tests.workers import WorkerProcess, redis_forget

FIXTURES = Path(__file__).parent / "fixtures"


def in_own_loop(main):
    """``asyncio.run(main())`` in a thread of its own: the browser tests' Playwright may
    hold a running loop in this one for the whole session."""
    outcome = {}

    def run():
        try:
            outcome["result"] = asyncio.run(main())
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def fixture_bytes(name: str) -> bytes:
    """A recorded payload file under tests/fixtures/, as bytes."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str):
    return json.loads(fixture_bytes(name))


@pytest.fixture
def booked_body() -> bytes:
    return fixture_bytes("rdesk/rdesk-booked.json")


@pytest.fixture
def mc_body() -> bytes:
    return fixture_bytes("rdesk/rdesk-mc.json")


@pytest.fixture
def account(db):
    """A connected account on a made-up AmoCRM host (mock it with ``responses``)."""
    account = AccountFactory(base_url="https://clinic.amocrm.ru")
    TokenFactory(account=account, access_token="live-access-token")
    return account


@pytest.fixture
def booked_flow(db, account) -> Flow:
    """The seeded booking flow (with the old service's default mappings) on ``account``."""
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()
    return flow


@pytest.fixture
def mc_flow(db, account) -> Flow:
    flow = Flow.objects.get(kind="mc")
    flow.account = account
    flow.save()
    return flow


@pytest.fixture
def emulator():
    """The AmoCRM emulator on a free port, rate limit off unless a test turns it on."""
    with EmulatorServer(port=0, rate_limit=0) as server:
        yield server


@pytest.fixture
def emulator_account(db, emulator):
    """An account pointed at the emulator, connected with a fresh OAuth pair."""
    account = AccountFactory(
        base_url=emulator.base_url,
        client_id="emulator-client",
        client_secret="emulator-secret",
        redirect_uri="http://127.0.0.1:8000/amocrm/oauth/callback/",
    )
    pair = emulator.state.issue_token()
    token_store(account=account, pair=pair)
    return account


@pytest.fixture
def emulator_flow(emulator_account) -> Flow:
    """The seeded booking flow, delivering to the emulator's account."""
    flow = Flow.objects.get(kind="booked")
    flow.account = emulator_account
    flow.save()
    return flow


@pytest.fixture
def amocrm_http():
    """``responses`` at the one HTTP seam: only registered calls succeed, and all must happen."""
    import responses

    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def enqueued():
    """The Celery nudge (``drain_account.apply_async``), mocked: what was sent to workers."""
    from unittest import mock

    from integrations.sync.tasks import drain_account

    with mock.patch.object(drain_account, "apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def worker():
    """A real Celery worker process, on an emptied Redis test database."""
    redis_forget()
    process = WorkerProcess()
    yield process
    process.stop()


@pytest.fixture
def hub_admin(db):
    from integrations.sync.roles import HUB_ADMINS

    return UserFactory(username="hub-admin", role=HUB_ADMINS)


@pytest.fixture
def operator(db):
    from integrations.sync.roles import OPERATORS

    return UserFactory(username="operator", role=OPERATORS)


@pytest.fixture
def auditor(db):
    from integrations.sync.roles import AUDITORS

    return UserFactory(username="auditor", role=AUDITORS)


@pytest.fixture
def pd_auditor(db):
    """An auditor who may also see personal data unmasked."""
    from integrations.sync.roles import AUDITORS, PERSONAL_DATA

    return UserFactory(username="pd-auditor", role=[AUDITORS, PERSONAL_DATA])


@pytest.fixture
def hub_admin_client(client, hub_admin):
    client.force_login(hub_admin)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Tests create users all the time; the real hasher makes each take half a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def english(settings):
    """Tests read the hub's English source texts; tests of the Russian admin ask for ru."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def fresh_flow_routes():
    """Each test reads the flows its own database holds, not a copy an earlier test left."""
    from integrations.sync.flow_routes import flow_routes_forget

    flow_routes_forget()
    yield
    flow_routes_forget()


@pytest.fixture
def mc_emulator_flow(emulator_account) -> Flow:
    """The seeded medical-centre flow on the emulator, with the birthday mapped."""
    flow = Flow.objects.get(kind="mc")
    flow.account = emulator_account
    flow.save()
    # What FIELD_MC_BIRTHDAY=1305201 would have seeded.
    FieldMapping.objects.create(
        flow=flow, source="birthday", field_id=1305201, field_type="birthday"
    )
    return flow


@pytest.fixture
def json_log(caplog):
    """What the JSON formatter writes for every record at DEBUG and above."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
