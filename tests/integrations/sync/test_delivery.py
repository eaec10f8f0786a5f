"""Delivering events to AmoCRM: claim, send, record, and what each answer leads to."""

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
from django.utils import timezone
from responses import matchers

from integrations.amocrm.models import Account, Token
from integrations.amocrm.tokens import token_store
from integrations.sync import delivery, outcomes
from integrations.sync.claims import claim_take
from integrations.sync.delivery import (
    event_deliver,
    events_sweep,
    retry_delay,
)
from integrations.sync.models import DeliveryAttempt, EventStatus, Flow, InboundEvent
from tests.conftest import fixture_json
from tests.factories import CustomFieldFactory, InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

API = "https://clinic.amocrm.ru"
LEAD_URL = f"{API}/api/v4/leads/23392663"
TOKEN_URL = f"{API}/oauth2/access_token"
LEAD_ANSWER = {
    "id": 23392663,
    "updated_at": 1751621727,
    "_links": {"self": {"href": LEAD_URL}},
}
# The sample booking (tests/fixtures/rdesk/rdesk-booked.json) through the seeded mappings.
SAMPLE_UPDATE = {
    "price": 153887,
    "custom_fields_values": [
        {"field_id": 1287599, "values": [{"value": "2022-09-05T14:22:33+03:00"}]},
        {"field_id": 1305167, "values": [{"value": "61361"}]},
        {"field_id": 1305111, "values": [{"value": "88888"}]},
        {"field_id": 1304923, "values": [{"value": "waiting"}]},
        {"field_id": 1305059, "values": [{"value": "2026-08-25T00:00:00+03:00"}]},
        {"field_id": 1305061, "values": [{"value": "2026-09-05T00:00:00+03:00"}]},
        {
            "field_id": 1304335,
            "values": [
                {
                    "value": "1. Фамилия1 Имя1 Отчество2 — Взрослый, Стандарт без балкона, "
                    "Лечение суставов и позвоночника, счёт 77777\n"
                    "2. Фамилия2 Имя2 Отчество2 — Взрослый, Стандарт без балкона, "
                    "Лечение суставов и позвоночника, счёт 77777"
                }
            ],
        },
        {"field_id": 1305107, "values": [{"value": "33333"}]},
        {
            "field_id": 1304929,
            "values": [
                {
                    "value": "Счёт 77777: сумма 147\u00a0966,30\u00a0₽, "
                    "оплачено 59\u00a0000,00\u00a0₽, к оплате 88\u00a0966,30\u00a0₽"
                }
            ],
        },
    ],
}
VALIDATION_PROBLEM = fixture_json("amocrm/validation-problem.json")


def booking_event(flow, item: dict | None = None, **fields) -> InboundEvent:
    item = item if item is not None else load_item("rdesk-booked.json")
    defaults = {
        "status": EventStatus.QUEUED,
        "rdesk_id": str(item.get("id", "")),
        "lead_id": str(item.get("lead_id", "")),
    }
    return InboundEventFactory(flow=flow, payload=item, **{**defaults, **fields})


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def seconds_from_now(moment) -> float:
    return (moment - timezone.now()).total_seconds()


def enqueued_accounts(apply_async) -> list[int]:
    """The accounts the workers were nudged to drain."""
    return [call.args[0][0] for call in apply_async.call_args_list]


# --- success --------------------------------------------------------------------------


def test_valid_booking_patches_its_lead_with_the_mapped_values(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    (call,) = amocrm_http.calls
    assert call.request.method == "PATCH"
    assert call.request.url == LEAD_URL
    assert call.request.headers["Authorization"] == "Bearer live-access-token"
    assert sent_json(call) == SAMPLE_UPDATE


def test_delivered_event_records_its_time_and_clears_the_schedule(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow)

    event_deliver(event_id=event.pk)

    event.refresh_from_db()
    assert event.status == EventStatus.DELIVERED
    assert event.delivered_at is not None
    assert abs(seconds_from_now(event.delivered_at)) < 5
    assert event.attempts == 1
    assert event.last_error == ""
    assert event.next_attempt_at is None


def test_delivery_records_one_attempt_with_request_response_and_duration(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow)

    event_deliver(event_id=event.pk)

    (attempt,) = DeliveryAttempt.objects.filter(event=event)
    assert attempt.request_method == "PATCH"
    assert attempt.request_url == LEAD_URL
    assert attempt.request_body == SAMPLE_UPDATE
    assert attempt.response_status == 200
    assert json.loads(attempt.response_body) == LEAD_ANSWER
    assert attempt.duration_ms >= 0
    assert (attempt.error_class, attempt.error_detail) == ("", "")


def test_computed_field_in_the_catalogue_is_never_sent(booked_flow, amocrm_http):
    CustomFieldFactory(account=booked_flow.account, field_id=1305167, is_computed=True)
    CustomFieldFactory(account=booked_flow.account, field_id=1305111, is_computed=False)
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow)

    event_deliver(event_id=event.pk)

    sent = sent_json(amocrm_http.calls[0])
    sent_ids = [field["field_id"] for field in sent["custom_fields_values"]]
    assert 1305167 not in sent_ids
    assert 1305111 in sent_ids
    assert len(sent_ids) == len(SAMPLE_UPDATE["custom_fields_values"]) - 1


def test_flow_without_mappings_or_price_is_skipped_without_a_call(booked_flow, amocrm_http):
    booked_flow.mappings.update(enabled=False)
    booked_flow.price_source = ""
    booked_flow.save()
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.SKIPPED

    event.refresh_from_db()
    assert event.last_error == "Nothing to send: no mapped value is filled."
    assert not DeliveryAttempt.objects.exists()


# --- failures that no retry can fix -------------------------------------------------


def test_invalid_booking_fails_with_a_reason_naming_the_fields_and_makes_no_call(
    booked_flow, amocrm_http
):
    event = booking_event(booked_flow, load_item("rdesk-booked-invalid.json"))

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error.startswith("Invalid payload: ")
    assert 'lead_id: Must be a positive integer; got "abc".' in event.last_error
    assert "money.total: A valid number is required." in event.last_error
    assert "billData.1.billSum: A valid number is required." in event.last_error
    assert len(amocrm_http.calls) == 0
    assert not DeliveryAttempt.objects.exists()


def test_value_that_does_not_fit_its_field_type_fails_without_a_call(booked_flow, amocrm_http):
    booked_flow.mappings.filter(source="status").update(field_type="checkbox")
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == (
        "Cannot map the payload: status -> field 1304923 (checkbox): "
        "'waiting' is not a yes/no value"
    )
    assert len(amocrm_http.calls) == 0


def test_amocrm_validation_error_fails_at_once_with_amocrms_detail(booked_flow, amocrm_http):
    amocrm_http.patch(
        LEAD_URL, json=VALIDATION_PROBLEM, status=400, content_type="application/problem+json"
    )
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == (
        "AmoCRM refused the update: Bad Request: Request validation failed; "
        "custom_fields_values.0.field_id: The value you selected is not a valid choice. "
        "(NotSupportedChoice)"
    )
    assert event.next_attempt_at is None
    (attempt,) = event.delivery_attempts.all()
    assert attempt.response_status == 400
    assert attempt.error_class == "ValidationFailed"
    assert json.loads(attempt.response_body) == VALIDATION_PROBLEM


def test_missing_lead_fails_naming_the_lead(booked_flow, amocrm_http):
    amocrm_http.patch(
        LEAD_URL,
        json={"title": "Not Found", "status": 404, "detail": "Lead not found"},
        status=404,
    )
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == "Lead 23392663 not found in AmoCRM: Not Found: Lead not found"
    assert event.delivery_attempts.get().error_class == "NotFound"


def test_disabled_flow_skips_the_event_without_a_call(booked_flow, amocrm_http):
    booked_flow.enabled = False
    booked_flow.save()
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.SKIPPED

    event.refresh_from_db()
    assert event.last_error == "Flow 'RDESK bookings' is disabled."
    assert event.next_attempt_at is None


def test_flow_without_an_account_fails_the_event(db, amocrm_http):
    flow = Flow.objects.get(kind="booked")  # seeded, never attached to an account
    event = booking_event(flow)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == "Flow 'RDESK bookings' has no AmoCRM account."


# --- retries --------------------------------------------------------------------------


def test_rate_limited_event_is_queued_again_after_amocrms_retry_after(
    booked_flow, amocrm_http, enqueued, django_capture_on_commit_callbacks
):
    amocrm_http.patch(
        LEAD_URL,
        json={
            "title": "Too Many Requests",
            "status": 429,
            "detail": "Slow down",
            "retry_after": 120,
        },
        status=429,
    )
    event = booking_event(booked_flow)

    with django_capture_on_commit_callbacks(execute=True):
        assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert 115 < seconds_from_now(event.next_attempt_at) <= 120
    assert event.last_error == "RateLimited: Too Many Requests: Slow down"
    attempt = event.delivery_attempts.get()
    assert (attempt.response_status, attempt.error_class) == (429, "RateLimited")
    assert enqueued_accounts(enqueued) == [booked_flow.account_id]
    assert enqueued.call_args.kwargs["countdown"] == pytest.approx(120.0)


def test_server_error_is_retried_after_the_first_backoff_step(
    booked_flow, amocrm_http, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.HUB_RETRY_BASE_DELAY = 10.0
    amocrm_http.patch(LEAD_URL, body="upstream failed", status=502)
    event = booking_event(booked_flow)

    with django_capture_on_commit_callbacks(execute=True):
        assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert 4 < seconds_from_now(event.next_attempt_at) <= 10
    assert event.last_error == "Unavailable: HTTP 502 Bad Gateway"
    attempt = event.delivery_attempts.get()
    assert (attempt.response_status, attempt.error_class) == (502, "Unavailable")
    assert attempt.response_body == "upstream failed"
    assert 5 <= enqueued.call_args.kwargs["countdown"] <= 10


def test_timeout_is_retried_and_recorded_without_a_response(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, body=requests.ConnectTimeout("connect timed out"))
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert seconds_from_now(event.next_attempt_at) > 0
    assert event.last_error == "Unavailable: AmoCRM unreachable: ConnectTimeout"
    attempt = event.delivery_attempts.get()
    assert attempt.response_status is None
    assert attempt.error_class == "Unavailable"
    assert attempt.request_body == SAMPLE_UPDATE


def test_retry_further_away_than_a_countdown_is_left_to_the_sweeper(
    booked_flow, amocrm_http, enqueued, django_capture_on_commit_callbacks
):
    amocrm_http.patch(LEAD_URL, json={"title": "Too Many Requests", "retry_after": 900}, status=429)
    event = booking_event(booked_flow)

    with django_capture_on_commit_callbacks(execute=True):
        event_deliver(event_id=event.pk)

    event.refresh_from_db()
    assert event.status == EventStatus.QUEUED
    assert 895 < seconds_from_now(event.next_attempt_at) <= 900
    assert enqueued.call_count == 0


def test_blocked_account_waits_at_least_ten_minutes(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, body="Forbidden", status=403)
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert seconds_from_now(event.next_attempt_at) > delivery.BLOCKED_MIN_DELAY - 5


def test_event_older_than_the_retry_age_fails_with_gave_up(booked_flow, amocrm_http, settings):
    settings.HUB_RETRY_MAX_AGE = 3600.0
    amocrm_http.patch(LEAD_URL, body="down", status=503)
    event = booking_event(booked_flow, received_at=timezone.now() - timedelta(hours=1), attempts=6)

    assert event_deliver(event_id=event.pk) == EventStatus.FAILED

    event.refresh_from_db()
    assert event.last_error == "Gave up after 7 attempts: Unavailable: HTTP 503 Service Unavailable"
    assert event.next_attempt_at is None
    assert event.delivery_attempts.get().error_class == "Unavailable"


def test_replayed_event_ages_from_its_replay_not_its_arrival(booked_flow, amocrm_http, settings):
    settings.HUB_RETRY_MAX_AGE = 3600.0
    amocrm_http.patch(LEAD_URL, body="down", status=503)
    event = booking_event(
        booked_flow,
        received_at=timezone.now() - timedelta(days=5),
        replayed_at=timezone.now(),
    )

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED


# --- tokens ---------------------------------------------------------------------------


def test_rejected_token_is_refreshed_once_and_the_update_sent_again(booked_flow, amocrm_http):
    amocrm_http.patch(
        LEAD_URL,
        status=401,
        json={"title": "Unauthorized", "status": 401, "detail": "Неверный логин или пароль"},
        match=[matchers.header_matcher({"Authorization": "Bearer live-access-token"})],
    )
    amocrm_http.post(
        TOKEN_URL,
        json={
            "token_type": "Bearer",
            "expires_in": 86400,
            "access_token": "new-access-token",
            "refresh_token": "new-refresh-token",
        },
    )
    amocrm_http.patch(
        LEAD_URL,
        json=LEAD_ANSWER,
        match=[matchers.header_matcher({"Authorization": "Bearer new-access-token"})],
    )
    old_refresh = Token.objects.get(account=booked_flow.account).refresh_token
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED

    token_request = parse_qs(amocrm_http.calls[1].request.body)
    assert token_request["grant_type"] == ["refresh_token"]
    assert token_request["refresh_token"] == [old_refresh]
    token = Token.objects.get(account=booked_flow.account)
    assert (token.access_token, token.refresh_token) == ("new-access-token", "new-refresh-token")
    statuses = sorted(event.delivery_attempts.values_list("response_status", flat=True))
    assert statuses == [200, 401]


def test_refused_refresh_pauses_the_event_and_disconnects_the_account(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, status=401, json={"title": "Unauthorized", "status": 401})
    amocrm_http.post(
        TOKEN_URL,
        status=401,
        json={"title": "Unauthorized", "status": 401, "hint": "Token has been revoked"},
    )
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.last_error.startswith("Paused: AmoCRM account")
    assert "Token has been revoked" in event.last_error
    assert event.next_attempt_at is None
    assert event.attempts == 0
    account = Account.objects.get(pk=booked_flow.account_id)
    assert account.state == Account.State.DISCONNECTED


def test_events_of_a_disconnected_account_wait_without_calling_amocrm(booked_flow, amocrm_http):
    account = booked_flow.account
    account.state_set(Account.State.DISCONNECTED, "Refresh refused")
    account.save()
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.QUEUED

    event.refresh_from_db()
    assert event.status == EventStatus.QUEUED
    assert event.next_attempt_at is None
    assert "reconnect it to resume" in event.last_error
    assert events_sweep(grace=0) == 0


def test_reconnecting_the_account_resumes_its_paused_events(
    booked_flow, amocrm_http, enqueued, django_capture_on_commit_callbacks
):
    account = booked_flow.account
    account.state_set(Account.State.DISCONNECTED, "Refresh refused")
    account.save()
    event = booking_event(booked_flow)
    event_deliver(event_id=event.pk)

    with django_capture_on_commit_callbacks(execute=True):
        token_store(account=account, pair={"access_token": "a2", "refresh_token": "r2"})

    event.refresh_from_db()
    assert event.next_attempt_at is not None
    assert enqueued_accounts(enqueued) == [account.pk]


def test_secrets_never_appear_in_delivery_attempts(booked_flow, amocrm_http):
    amocrm_http.patch(
        LEAD_URL,
        status=401,
        json={"title": "Unauthorized"},
        match=[matchers.header_matcher({"Authorization": "Bearer live-access-token"})],
    )
    amocrm_http.post(
        TOKEN_URL,
        json={"access_token": "new-access-token", "refresh_token": "new-refresh-token"},
    )
    amocrm_http.patch(
        LEAD_URL,
        # An answer echoing token-like keys must be stored redacted.
        json={**LEAD_ANSWER, "access_token": "echoed-access-token"},
        match=[matchers.header_matcher({"Authorization": "Bearer new-access-token"})],
    )
    account = booked_flow.account
    old_refresh = Token.objects.get(account=account).refresh_token
    event = booking_event(booked_flow)

    event_deliver(event_id=event.pk)

    stored = json.dumps(list(DeliveryAttempt.objects.values()), default=str)
    assert DeliveryAttempt.objects.count() == 2
    for secret in (
        account.client_secret,
        "live-access-token",
        old_refresh,
        "new-access-token",
        "new-refresh-token",
        "echoed-access-token",
    ):
        assert secret not in stored
    assert "/oauth2/" not in stored


# --- claiming -------------------------------------------------------------------------


def test_event_not_yet_due_is_not_claimed(booked_flow, amocrm_http):
    event = booking_event(booked_flow, next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert event_deliver(event_id=event.pk) is None

    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.QUEUED, 0)
    assert len(amocrm_http.calls) == 0


@pytest.mark.parametrize(
    "status",
    [EventStatus.DELIVERED, EventStatus.FAILED, EventStatus.SKIPPED, EventStatus.REJECTED],
)
def test_event_that_is_not_pending_is_not_claimed(booked_flow, status):
    booking_event(booked_flow, status=status)

    assert claim_take(account_id=booked_flow.account_id, leads=50) is None


def test_claim_takes_the_event_for_one_lease_under_a_token(booked_flow, settings):
    settings.HUB_DELIVERY_LEASE = 30.0
    event = booking_event(booked_flow, status=EventStatus.RECEIVED)

    claim = claim_take(account_id=booked_flow.account_id, leads=50)

    assert [e.pk for e in claim.events] == [event.pk]
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.QUEUED, 1)
    assert event.claim_token == claim.token
    assert 25 < seconds_from_now(event.next_attempt_at) <= 30
    assert claim_take(account_id=booked_flow.account_id, leads=50) is None


def test_a_claim_leaves_the_raw_body_and_headers_unread(booked_flow):
    booking_event(booked_flow, status=EventStatus.RECEIVED)

    (event,) = claim_take(account_id=booked_flow.account_id, leads=50).events

    assert {"raw_body", "headers"} <= event.get_deferred_fields()
    assert event.payload["lead_id"]


def test_claim_of_a_killed_worker_is_taken_over_once_its_lease_ran_out(booked_flow):
    event = booking_event(booked_flow)
    first = claim_take(account_id=booked_flow.account_id, leads=50)
    InboundEvent.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    second = claim_take(account_id=booked_flow.account_id, leads=50)

    assert [e.pk for e in second.events] == [event.pk]
    assert second.token != first.token
    event.refresh_from_db()
    assert (event.claim_token, event.attempts) == (second.token, 2)


def test_duplicate_message_does_not_deliver_an_event_twice(booked_flow, amocrm_http):
    amocrm_http.patch(LEAD_URL, json=LEAD_ANSWER)
    event = booking_event(booked_flow)

    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED
    assert event_deliver(event_id=event.pk) is None

    assert len(amocrm_http.calls) == 1
    assert DeliveryAttempt.objects.filter(event=event).count() == 1


# --- sweeping -------------------------------------------------------------------------


def test_sweeper_re_enqueues_pending_events_past_the_grace_only(booked_flow, enqueued, settings):
    settings.HUB_SWEEP_GRACE = 60.0
    stale = timezone.now() - timedelta(minutes=5)
    lost_received = booking_event(booked_flow, status=EventStatus.RECEIVED, next_attempt_at=stale)
    lost_queued = booking_event(booked_flow, status=EventStatus.QUEUED, next_attempt_at=stale)
    fresh = booking_event(booked_flow, status=EventStatus.QUEUED, next_attempt_at=timezone.now())
    settled = [
        booking_event(booked_flow, status=status, next_attempt_at=stale)
        for status in (EventStatus.DELIVERED, EventStatus.REJECTED, EventStatus.FAILED)
    ]

    assert events_sweep() == 2

    assert enqueued_accounts(enqueued) == [booked_flow.account_id]
    for event in (lost_received, lost_queued):
        event.refresh_from_db()
        assert event.status == EventStatus.QUEUED
        # The sweeper writes no due time: it could overwrite a lease just taken.
        assert event.next_attempt_at == stale
    fresh.refresh_from_db()
    assert fresh.status == EventStatus.QUEUED
    for event in settled:
        before = event.status
        event.refresh_from_db()
        assert (event.status, event.next_attempt_at) == (before, stale)


def test_sweeper_with_nothing_stuck_sends_nothing(booked_flow, enqueued):
    booking_event(booked_flow, next_attempt_at=timezone.now())

    assert events_sweep(grace=60) == 0
    assert enqueued.call_count == 0


# --- backoff --------------------------------------------------------------------------


@pytest.fixture
def backoff(settings):
    settings.HUB_RETRY_BASE_DELAY = 10.0
    settings.HUB_RETRY_MAX_DELAY = 3600.0


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 5, 10), (2, 10, 20), (3, 20, 40), (6, 160, 320), (9, 1280, 2560)],
)
def test_retry_delay_grows_exponentially_within_its_jitter_band(backoff, attempts, low, high):
    delays = [retry_delay(attempts) for _ in range(50)]

    assert all(low <= delay <= high for delay in delays)


@pytest.mark.parametrize("attempts", [10, 12, 40, 200])
def test_retry_delay_is_capped(backoff, attempts):
    delays = [retry_delay(attempts) for _ in range(50)]

    assert all(1800 <= delay <= 3600 for delay in delays)


def test_retry_delay_is_jittered(backoff):
    assert len({retry_delay(4) for _ in range(20)}) > 1


def test_retry_delay_spans_the_jitter_band_from_half_to_the_ceiling(backoff, monkeypatch):
    monkeypatch.setattr(outcomes.random, "uniform", lambda low, high: (low, high))

    assert retry_delay(3) == (20.0, 40.0)


def test_retry_delay_honours_a_longer_retry_after(backoff):
    assert retry_delay(1, retry_after=300.0) == 300.0


def test_retry_delay_keeps_its_backoff_when_retry_after_is_shorter(backoff):
    assert 20 <= retry_delay(3, retry_after=1.0) <= 40
