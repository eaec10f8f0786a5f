"""Many workers at once: two or more real Celery worker processes, PostgreSQL, Redis, and
the emulator on a real port at AmoCRM's 7 requests a second.

Per-lead order under a shuffled burst, a batch with one invalid lead, the three races
the per-event design had (each of these tests fails against it: see the commit that
added them), and ``kill -9`` of a worker in the middle of a burst.
"""

import json
import random
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection, transaction
from django.db.models import Count

from integrations.amocrm.emulator.server import EmulatorServer
from integrations.amocrm.models import Account
from integrations.amocrm.tokens import token_store
from integrations.sync.models import EventStatus, Flow, FlowStatusMapping, InboundEvent
from tests.integrations.rdesk.payloads import load_item
from tests.workers import WorkerProcess, redis_forget

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

FIRST_LEAD = 51000001
PENDING = (EventStatus.RECEIVED, EventStatus.QUEUED)


@pytest.fixture
def emulator():
    """The emulator as strict as AmoCRM about its rate: an 8th request in a second is 429."""
    with EmulatorServer(rate_limit=7) as server:
        yield server


@pytest.fixture
def flow(emulator_flow) -> Flow:
    return emulator_flow


@pytest.fixture
def spawn():
    """Starts worker processes (in parallel): ``spawn(2, HUB_DELIVERY_LEASE="1")``."""
    started = []

    def start(count: int = 2, *, concurrency: int = 2, **env) -> list[WorkerProcess]:
        redis_forget()
        workers = [
            WorkerProcess(
                concurrency=concurrency,
                extra_env={"AMOCRM_RATE_LIMIT": "7", "LOG_LEVEL": "WARNING", **env},
                name=f"worker{len(started) + n}",
                wait=False,
            )
            for n in range(count)
        ]
        started.extend(workers)
        for worker in workers:
            worker.wait_ready()
        return workers

    yield start
    for worker in started:
        worker.stop()


def item(lead_id: int, value: int, **fields) -> dict:
    """A booking whose price (money.total) says which event it is."""
    sample = load_item("rdesk-booked.json")
    return {
        **sample,
        "id": 700000 + value,
        "lead_id": lead_id,
        "money": {**sample["money"], "total": value},
        **fields,
    }


def post(client, items: list[dict]) -> None:
    response = client.post("/zdrav/booked", json.dumps(items), content_type="application/json")
    assert response.status_code == 200


def wait_settled(timeout: float, workers=()) -> float:
    """Seconds until no event is pending any more."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not InboundEvent.objects.filter(status__in=PENDING).exists():
            return time.monotonic() - started
        time.sleep(0.1)
    logs = "\n".join(w.log()[-2000:] for w in workers)
    pending = InboundEvent.objects.filter(status__in=PENDING).count()
    raise AssertionError(f"{pending} events still pending after {timeout}s\n{logs}")


def sent_prices(emulator) -> dict[int, list[int]]:
    """Per lead, the prices AmoCRM applied, in the order it applied them."""
    prices = defaultdict(list)
    for request in emulator.state.requests:
        if request["method"] != "PATCH" or request["status"] != 200:
            continue
        if isinstance(request["body"], list):
            for part in request["body"]:
                prices[part["id"]].append(part["price"])
        else:
            prices[int(request["path"].rsplit("/", 1)[1])].append(request["body"]["price"])
    return prices


def lead_patches(emulator, lead_id: int) -> list[dict]:
    return [
        r
        for r in emulator.state.requests
        if r["method"] == "PATCH"
        and (
            r["path"] == f"/api/v4/leads/{lead_id}"
            or (isinstance(r["body"], list) and any(p["id"] == lead_id for p in r["body"]))
        )
    ]


# --- order under a shuffled burst --------------------------------------------------------


def test_2000_shuffled_events_for_200_leads_end_with_each_leads_newest_values(
    client, flow, emulator, spawn
):
    leads, events = 200, 2000
    for n in range(leads):
        emulator.state.add_lead(id=FIRST_LEAD + n)
    lead_of = [FIRST_LEAD + n % leads for n in range(events)]
    random.Random(8).shuffle(lead_of)
    # The n-th event to arrive carries price n + 1: arrival order is what "newer" means.
    burst = [item(lead_id, n + 1) for n, lead_id in enumerate(lead_of)]
    workers = spawn(2)

    started = time.monotonic()
    for start in range(0, events, 20):  # each event stores its request's body: keep them small
        post(client, burst[start : start + 20])
    wait_settled(60, workers)
    elapsed = time.monotonic() - started

    newest = {}
    for n, lead_id in enumerate(lead_of):
        newest[lead_id] = n + 1
    for lead_id, price in newest.items():
        assert emulator.state.lead(lead_id)["price"] == price
    applied = sent_prices(emulator)
    for lead_id, prices in applied.items():
        assert prices == sorted(prices), f"lead {lead_id} got an older event after a newer one"
    statuses = dict(InboundEvent.objects.values_list("status").annotate(n=Count("id")))
    assert statuses.get(EventStatus.DELIVERED, 0) >= leads
    assert statuses.get(EventStatus.FAILED, 0) == 0
    # One request in flight per integration and six slots a second: however a loaded
    # machine delays a request after its slot, AmoCRM never counts an 8th in a second.
    limited = emulator.state.counters["rate_limited"]
    assert limited == 0, f"{limited} requests answered 429"
    print(
        f"\n2,000 shuffled events / 200 leads, 2 worker processes: settled in {elapsed:.1f} s, "
        f"{len([r for r in emulator.state.requests if r['method'] == 'PATCH'])} PATCH requests, "
        f"{limited} x 429, {statuses}"
    )


def test_batch_with_one_invalid_lead_delivers_the_others_across_workers(
    client, flow, emulator, spawn
):
    FlowStatusMapping.objects.create(
        flow=flow, booking_status="checkin", pipeline_id=10156066, status_id=999999
    )
    for n in range(30):
        emulator.state.add_lead(id=FIRST_LEAD + n)
    burst = [item(FIRST_LEAD + n, n + 1) for n in range(30)]
    burst[7] = item(FIRST_LEAD + 7, 8, status="checkin")
    workers = spawn(2)

    post(client, burst)
    wait_settled(30, workers)

    bad = InboundEvent.objects.get(lead_id=str(FIRST_LEAD + 7))
    assert bad.status == EventStatus.FAILED
    assert bad.last_error == (
        "AmoCRM refused the update: Bad Request: Request validation failed; "
        "status_id: The value you selected is not a valid choice. (NotSupportedChoice)"
    )
    others = InboundEvent.objects.exclude(pk=bad.pk)
    assert set(others.values_list("status", flat=True)) == {EventStatus.DELIVERED}
    for n in range(30):
        if n != 7:
            assert emulator.state.lead(FIRST_LEAD + n)["price"] == n + 1


# --- the three races of the per-event design ---------------------------------------------


def test_two_workers_never_send_an_older_event_while_a_newer_one_for_its_lead_is_in_flight(
    client, flow, emulator, spawn
):
    emulator.state.add_lead(id=FIRST_LEAD)
    emulator.state.fault_set(delay=1.0)  # both would be in flight at once
    spawn(2, concurrency=1)

    post(client, [item(FIRST_LEAD, 1), item(FIRST_LEAD, 2)])
    wait_settled(30)

    older, newer = InboundEvent.objects.order_by("item_index")
    assert (older.status, newer.status) == (EventStatus.SKIPPED, EventStatus.DELIVERED)
    assert [r["status"] for r in lead_patches(emulator, FIRST_LEAD)] == [200]
    assert emulator.state.lead(FIRST_LEAD)["price"] == 2


def test_a_call_outliving_the_lease_is_neither_swept_nor_sent_twice(client, flow, emulator, spawn):
    from integrations.sync.delivery import events_sweep

    emulator.state.add_lead(id=FIRST_LEAD)
    emulator.state.fault_set(delay=2.5)  # the call outlives a 1-second lease
    spawn(2, concurrency=1, HUB_DELIVERY_LEASE="1")

    post(client, [item(FIRST_LEAD, 1)])
    time.sleep(1.5)  # the worker is in the middle of its call, its first lease past
    events_sweep(grace=0)
    wait_settled(30)
    time.sleep(3.0)  # a second, swept delivery would land by now

    event = InboundEvent.objects.get()
    assert event.status == EventStatus.DELIVERED
    assert event.delivered_at is not None
    assert event.attempts == 1
    assert len(lead_patches(emulator, FIRST_LEAD)) == 1


def test_account_reconnected_between_claim_and_finish_still_delivers_its_event(
    client, flow, emulator, spawn
):
    emulator.state.fault_set(delay=1.0)  # the PATCH and the refresh both take a second
    emulator.state.revoke_tokens()  # AmoCRM answers 401 and refuses the refresh
    account = flow.account
    spawn(1, concurrency=1)

    post(client, [item(23392663, 1)])
    event = InboundEvent.objects.get()
    _wait(lambda: any(r["status"] == 401 for r in emulator.state.requests), 15)
    # The worker now refreshes (refused) and then records the event as paused; hold its
    # write back while the admin reconnects the account.
    locker = threading.Thread(target=_hold_row, args=(event.pk, 3.0))
    locker.start()
    _wait(lambda: Account.objects.get(pk=account.pk).state == Account.State.DISCONNECTED, 15)
    account.refresh_from_db()  # as the admin's OAuth callback loads it: disconnected
    token_store(account=account, pair=emulator.state.issue_token())
    locker.join()

    _wait(lambda: InboundEvent.objects.get(pk=event.pk).status == EventStatus.DELIVERED, 20)
    assert emulator.state.lead(23392663)["price"] == 1


def _hold_row(event_id: int, seconds: float) -> None:
    try:
        with transaction.atomic():
            InboundEvent.objects.select_for_update().get(pk=event_id)
            time.sleep(seconds)
    finally:
        connection.close()


def _wait(condition, timeout: float, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(message or f"condition not met within {timeout}s")


# --- kill -9 --------------------------------------------------------------------------------


def test_events_of_a_worker_killed_mid_burst_are_delivered_by_another(
    client, flow, emulator, spawn
):
    events = 600
    for n in range(events):
        emulator.state.add_lead(id=FIRST_LEAD + n)
    emulator.state.fault_set(delay=0.3)
    # Short timeouts so the lease a call takes (timeouts + 5 s) runs out soon after the kill.
    env = {
        "HUB_BATCH_SIZE": "20",
        "HUB_DELIVERY_LEASE": "6",
        "AMOCRM_CONNECT_TIMEOUT": "2",
        "AMOCRM_READ_TIMEOUT": "3",
    }
    victim, survivor = spawn(2, **env)

    burst = [item(FIRST_LEAD + n, n + 1) for n in range(events)]
    for start in range(0, events, 20):  # each event stores its request's body: keep them small
        post(client, burst[start : start + 20])
    _wait(
        lambda: InboundEvent.objects.filter(status=EventStatus.DELIVERED).count() >= events // 4,
        30,
    )
    held = InboundEvent.objects.filter(status__in=PENDING, claim_token__isnull=False).count()
    victim.kill()
    killed_at = time.monotonic()
    wait_settled(60, [survivor])
    recovery = time.monotonic() - killed_at

    assert set(InboundEvent.objects.values_list("status", flat=True)) == {EventStatus.DELIVERED}
    assert emulator.state.lead(FIRST_LEAD + events - 1)["price"] == events
    assert emulator.state.counters["rate_limited"] == 0
    print(
        f"\nkill -9 mid-burst: {held} events held when killed; all {events} delivered "
        f"{recovery:.1f} s after the kill"
    )
    assert recovery < 60
