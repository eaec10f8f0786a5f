"""AmoCRM's request budget: requests wait for a slot, never more than 7 in any second.

Unit tests of both limiters (Redis, shared by every worker and host; and in-process),
then 100 one-lead requests by a real 4-thread worker against the emulator at AmoCRM's
limit (batches of one, so that the requests, not the batches, are what is counted).
"""

import hashlib
import json
import os
import threading
import time
import uuid

import pytest
import requests
from django.utils import timezone

from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.ratelimit import (
    LocalRateLimiter,
    RedisRateLimiter,
    SlotTimeout,
    limiter_get,
    limiter_reset,
)
from integrations.amocrm.tokens import token_store
from integrations.sync.delivery import event_deliver, events_enqueue
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow, InboundEvent
from integrations.sync.tasks import drain_account
from tests.factories import AccountFactory
from tests.integrations.rdesk.payloads import load_item
from tests.workers import WorkerProcess, redis_forget


def redis_limiter(**kwargs) -> RedisRateLimiter:
    return RedisRateLimiter(os.environ["HUB_TEST_REDIS_URL"], **kwargs)


@pytest.fixture(
    params=[
        pytest.param(redis_limiter, id="redis", marks=pytest.mark.redis),
        pytest.param(LocalRateLimiter, id="local"),
    ]
)
def make_limiter(request):
    """Builds the limiter under test: ``make_limiter(limit=..., window=..., max_wait=...)``."""
    return request.param


@pytest.fixture
def key() -> str:
    """A key no other test (or earlier run) has spent budget on."""
    return f"test-{uuid.uuid4().hex}"


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of moments that fall within ``window`` seconds of each other."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_most_in_any_window_counts_a_sliding_window():
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.6], 1.0) == 3
    assert most_in_any_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4
    assert most_in_any_window([], 1.0) == 0


# --- the limiters ---------------------------------------------------------------------


def test_requests_within_the_limit_go_at_once(make_limiter, key):
    limiter = make_limiter(limit=3, window=0.5)

    assert timed(lambda: [limiter.acquire(key) for _ in range(3)]) < 0.1


def test_request_over_the_limit_waits_for_a_slot_instead_of_failing(make_limiter, key):
    limiter = make_limiter(limit=3, window=0.5)
    for _ in range(3):
        limiter.acquire(key)

    waited = timed(lambda: limiter.acquire(key))

    assert 0.4 <= waited < 0.8


def test_separate_keys_have_separate_budgets(make_limiter, key):
    limiter = make_limiter(limit=2, window=5.0)
    limiter.acquire(key)
    limiter.acquire(key)

    assert timed(lambda: limiter.acquire(key + "-other")) < 0.1


def test_slot_timeout_when_no_slot_comes_free_within_the_patience(make_limiter, key):
    limiter = make_limiter(limit=1, window=5.0, max_wait=0.5)
    limiter.acquire(key)

    started = time.monotonic()
    with pytest.raises(SlotTimeout, match="no AmoCRM request slot within 0s"):
        limiter.acquire(key)
    # It gives up as soon as it knows the wait is too long, rather than sleeping first.
    assert time.monotonic() - started < 0.2


def test_threads_sharing_a_limiter_never_exceed_the_limit(make_limiter, key):
    limiter = make_limiter(limit=4, window=0.3)
    granted: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            limiter.acquire(key)
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 30
    # A little slack: a grant is recorded just after the limiter gave it.
    assert most_in_any_window(granted, 0.3 - 0.02) <= 4


@pytest.mark.redis
def test_limiters_on_different_hosts_share_one_budget(key):
    # Two RedisRateLimiter instances are two worker processes, possibly on two hosts.
    here, there = redis_limiter(limit=3, window=0.5), redis_limiter(limit=3, window=0.5)
    here.acquire(key)
    here.acquire(key)
    there.acquire(key)

    assert timed(lambda: there.acquire(key)) >= 0.4


@pytest.mark.redis
def test_process_limiter_is_redis_backed_when_redis_is_configured(settings):
    settings.AMOCRM_RATE_REDIS_URL = os.environ["HUB_TEST_REDIS_URL"]
    settings.AMOCRM_RATE_LIMIT = 5
    limiter_reset()
    try:
        limiter = limiter_get()
        assert isinstance(limiter, RedisRateLimiter)
        assert limiter.limit == 4  # one fewer than AmoCRM's limit
        assert limiter_get() is limiter
    finally:
        limiter_reset()


def test_process_limiter_is_in_process_without_redis(settings):
    settings.AMOCRM_RATE_REDIS_URL = ""
    settings.AMOCRM_RATE_LIMIT = 3
    settings.AMOCRM_RATE_WINDOW = 2.0
    limiter_reset()
    try:
        limiter = limiter_get()
        assert isinstance(limiter, LocalRateLimiter)
        assert (limiter.limit, limiter.window) == (2, 2.0)
    finally:
        limiter_reset()


def test_default_budget_is_7_requests_a_second_with_a_margin(settings):
    assert settings.AMOCRM_RATE_LIMIT == 7
    assert 1.0 <= settings.AMOCRM_RATE_WINDOW <= 1.2


# --- one request in flight per integration ----------------------------------------------


def hold_slot(limiter, key: str, *, entered: list, seconds: float) -> None:
    with limiter.slot(key):
        entered.append(time.monotonic())
        time.sleep(seconds)


def test_a_second_request_waits_for_the_one_in_flight(make_limiter, key):
    limiter = make_limiter(limit=100, window=1.0)
    entered: list[float] = []
    first = threading.Thread(
        target=hold_slot, args=(limiter, key), kwargs={"entered": entered, "seconds": 0.3}
    )
    first.start()
    while not entered:
        time.sleep(0.001)

    waited = timed(lambda: hold_slot(limiter, key, entered=entered, seconds=0))
    first.join()

    assert waited >= 0.25


def test_other_integrations_do_not_wait_for_one_in_flight(make_limiter, key):
    limiter = make_limiter(limit=100, window=1.0)
    entered: list[float] = []
    first = threading.Thread(
        target=hold_slot, args=(limiter, key), kwargs={"entered": entered, "seconds": 0.3}
    )
    first.start()
    while not entered:
        time.sleep(0.001)

    waited = timed(lambda: hold_slot(limiter, key + "-other", entered=entered, seconds=0))
    first.join()

    assert waited < 0.1


@pytest.mark.redis
def test_a_request_in_flight_on_one_host_holds_back_another_host(key):
    # Two instances, two Redis connections: two worker processes, possibly two hosts.
    here, there = redis_limiter(limit=100, window=1.0), redis_limiter(limit=100, window=1.0)
    entered: list[float] = []
    first = threading.Thread(
        target=hold_slot, args=(here, key), kwargs={"entered": entered, "seconds": 0.3}
    )
    first.start()
    while not entered:
        time.sleep(0.001)

    waited = timed(lambda: hold_slot(there, key, entered=entered, seconds=0))
    first.join()

    assert waited >= 0.25


@pytest.mark.redis
def test_a_killed_workers_turn_frees_itself_and_its_late_release_spares_the_next(key, settings):
    settings.AMOCRM_TIMEOUT = (0.1, 0.1)  # the turn's time: timeouts plus a margin
    here, there = redis_limiter(limit=100, window=1.0), redis_limiter(limit=100, window=1.0)
    lock_key = f"{here.prefix}amocrm-in-flight:{key}"
    here.redis.set(lock_key, "killed-worker", px=200)  # taken, never released

    waited = timed(lambda: hold_slot(there, key, entered=[], seconds=0))
    here.redis.set(lock_key, "next-request", px=5000)
    here.release(keys=[lock_key], args=["killed-worker"])

    assert 0.15 <= waited < 2
    assert here.redis.get(lock_key) == b"next-request"


# --- a 429 anyway ---------------------------------------------------------------------


def test_429_despite_the_limiter_backs_off_instead_of_hammering(db, enqueued, settings):
    # Something else on the same address spent AmoCRM's budget; the hub's limiter knew nothing.
    with EmulatorServer(rate_limit=1) as emulator:
        account = AccountFactory(base_url=emulator.base_url, client_id="emulator-client")
        token_store(account=account, pair=emulator.state.issue_token())
        Flow.objects.filter(kind="booked").update(account=account)
        item = load_item("rdesk-booked.json")
        event = InboundEvent.objects.create(
            flow=Flow.objects.get(kind="booked"),
            raw_body=b"[]",
            body_hash="0" * 64,
            payload=item,
            lead_id=item["lead_id"],
            status=EventStatus.QUEUED,
            next_attempt_at=timezone.now(),
        )
        requests.get(emulator.base_url + "/api/v4/account", timeout=5)

        assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

        event.refresh_from_db()
        wait = (event.next_attempt_at - timezone.now()).total_seconds()
        assert 1 <= wait <= settings.HUB_RETRY_BASE_DELAY  # retry_after 1 s; backoff 5-10 s
        assert event.last_error.startswith("RateLimited: Too Many Requests")
        assert [(r["path"], r["status"]) for r in emulator.state.requests] == [
            ("/api/v4/account", 401),
            ("/api/v4/leads/23392663", 429),
        ]
        assert DeliveryAttempt.objects.get(event=event).error_class == "RateLimited"


# --- 60 requests by four drains of one account in a real worker ---------------------

EVENTS = 60
FIRST_LEAD = 31000001


@pytest.fixture
def limited_emulator():
    """The emulator at AmoCRM's limit: an 8th request within a second is answered 429."""
    with EmulatorServer(rate_limit=7) as server:
        yield server


@pytest.fixture
def worker():
    redis_forget()
    process = WorkerProcess(
        concurrency=4, extra_env={"AMOCRM_RATE_LIMIT": "7", "HUB_BATCH_SIZE": "1"}
    )
    yield process
    process.stop()


def booked_events(flow: Flow, count: int) -> list[int]:
    """``count`` stored bookings, each for its own lead; their ids."""
    item = load_item("rdesk-booked.json")
    now = timezone.now()
    events = []
    for index in range(count):
        payload = {**item, "id": 500000 + index, "lead_id": str(FIRST_LEAD + index)}
        raw = json.dumps([payload], ensure_ascii=False).encode()
        events.append(
            InboundEvent(
                flow=flow,
                received_at=now,
                raw_body=raw,
                body_hash=hashlib.sha256(raw).hexdigest(),
                payload=payload,
                rdesk_id=str(payload["id"]),
                lead_id=payload["lead_id"],
                next_attempt_at=now,
            )
        )
    return [event.pk for event in InboundEvent.objects.bulk_create(events)]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_60_requests_by_4_drains_never_exceed_7_a_second(limited_emulator, worker):
    account = AccountFactory(
        base_url=limited_emulator.base_url,
        client_id="emulator-client",
        client_secret="emulator-secret",
        redirect_uri="http://127.0.0.1:8000/amocrm/oauth/callback/",
    )
    token_store(account=account, pair=limited_emulator.state.issue_token())
    flow = Flow.objects.get(kind="booked")
    flow.account = account
    flow.save()
    for index in range(EVENTS):
        limited_emulator.state.add_lead(id=FIRST_LEAD + index)
    ids = booked_events(flow, EVENTS)

    started = time.monotonic()
    events_enqueue(ids)
    for _ in range(3):  # four drains of the one account at once, one per worker thread
        drain_account.apply_async((account.pk,))
    deadline = started + 90
    delivered = 0
    while time.monotonic() < deadline:
        delivered = InboundEvent.objects.filter(status=EventStatus.DELIVERED).count()
        if delivered == EVENTS:
            break
        time.sleep(0.5)
    duration = time.monotonic() - started

    assert delivered == EVENTS, worker.log()[-3000:]
    requests = limited_emulator.state.requests
    times = [entry["time"] for entry in requests]
    busiest = most_in_any_window(times, 1.0)
    print(
        f"\nrate test: {EVENTS} events in {duration:.1f} s, {len(requests)} requests, "
        f"at most {busiest} in any one-second window, "
        f"{limited_emulator.state.counters['rate_limited']} answered 429"
    )
    assert limited_emulator.state.counters["rate_limited"] == 0
    assert [e["status"] for e in requests] == [200] * EVENTS
    assert busiest <= 7
    assert limited_emulator.state.counters["leads_updated"] == EVENTS
    assert limited_emulator.state.lead(FIRST_LEAD + EVENTS - 1)["price"] == 153887
    assert DeliveryAttempt.objects.filter(response_status=200).count() == EVENTS
    # At 7 requests per 1.1 s the 100 requests cannot take much less than 14 seconds.
    span = max(times) - min(times)
    assert span >= (EVENTS - 7) / 7
