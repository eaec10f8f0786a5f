"""Many workers meet an expired token at once: AmoCRM sees exactly one refresh.

Eight threads, each on its own PostgreSQL connection, against the emulator in strict
mode (a spent refresh token is revoked at once, as amoCRM does), so a second refresh
with the same token would show up as ``invalid_grant``.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from integrations.amocrm.client import AmoCRMClient
from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.models import Account, ApiCallRecord, Token
from integrations.amocrm.ratelimit import limiter_get
from integrations.amocrm.tokens import AccountTokens, token_store
from tests.factories import AccountFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

WORKERS = 8


@pytest.fixture
def strict_emulator():
    """AmoCRM's own rules: 7 requests a second, a refresh token exchanged once only."""
    with EmulatorServer(rate_limit=7, strict_refresh=True) as server:
        yield server


@pytest.fixture
def account(strict_emulator) -> Account:
    account = AccountFactory(
        base_url=strict_emulator.base_url,
        client_id="emulator-client",
        client_secret="emulator-secret",
        redirect_uri="http://127.0.0.1:8000/amocrm/oauth/callback/",
    )
    token_store(account=account, pair=strict_emulator.state.issue_token())
    return account


def at_once(work, count: int = WORKERS) -> list:
    """Runs ``work()`` in ``count`` threads released together; their results, in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work()
        except BaseException as error:  # reported below, with the thread's own traceback
            errors.append(error)
        finally:
            connection.close()  # each thread had its own database connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_workers_seeing_an_expired_token_share_one_refresh(account, strict_emulator):
    Token.objects.filter(account=account).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = Token.objects.get(account=account)

    tokens = at_once(lambda: AccountTokens(Account.objects.get(pk=account.pk)).access_token())

    counters = strict_emulator.state.counters
    assert counters["refresh"] == 1
    assert counters["invalid_grant"] == 0
    assert len(set(tokens)) == 1
    stored = Token.objects.get(account=account)
    assert tokens[0] == stored.access_token != before.access_token
    assert stored.refresh_token != before.refresh_token
    assert strict_emulator.state.access_token_valid(stored.access_token)
    assert stored.refresh_token in strict_emulator.state.refresh_tokens
    assert ApiCallRecord.objects.filter(request_url__endswith="/oauth2/access_token").count() == 1


def test_workers_rejected_with_401_at_once_share_one_refresh(account, strict_emulator):
    # The hub thinks the token is good for hours, but AmoCRM no longer takes it.
    strict_emulator.state.expire_access_tokens()

    def account_name() -> str:
        mine = Account.objects.get(pk=account.pk)  # each worker loads its own
        client = AmoCRMClient(mine, tokens=AccountTokens(mine), limiter=limiter_get(), audit=False)
        return client.account_get()["name"]

    answers = at_once(account_name)

    counters = strict_emulator.state.counters
    assert answers == ["Здравница (emulator)"] * WORKERS
    assert counters["refresh"] == 1
    assert counters["invalid_grant"] == 0
    assert counters["rate_limited"] == 0
    stored = Token.objects.get(account=account)
    assert strict_emulator.state.access_token_valid(stored.access_token)
    account.refresh_from_db()
    assert account.state == Account.State.CONNECTED
    # Every API call that succeeded carried the one new token.
    sent = {
        r["headers"]["authorization"]
        for r in strict_emulator.state.requests
        if r["path"] == "/api/v4/account" and r["status"] == 200
    }
    assert sent == {f"Bearer {stored.access_token}"}
