"""The dashboard on the admin index: traffic by local day and hour, delivery time, backlog,
failure reasons, accounts, and the page as each role sees it."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from integrations.amocrm.models import Account
from integrations.sync.charts import Bar, axis_top, stacked_bars_svg
from integrations.sync.dashboard import (
    accounts_health,
    backlog_summary,
    dashboard_build,
    events_by_day,
    events_by_hour,
    latency_percentiles,
    missing_fields,
)
from integrations.sync.failure_reasons import failure_groups, reason_normalise
from integrations.sync.models import EventStatus, InboundEvent
from integrations.sync.templatetags.dashboard import sync_duration
from tests.factories import (
    AccountFactory,
    CustomFieldFactory,
    FieldMappingFactory,
    FlowFactory,
    InboundEventFactory,
    TokenFactory,
    UserFactory,
)

MOSCOW = ZoneInfo("Europe/Moscow")
# 12:00 in Moscow, 09:00 UTC.
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# percentile_cont and regexp_replace are PostgreSQL's; the embedded mode computes in Python.
BOTH_PATHS = [
    pytest.param(True, id="in-database", marks=pytest.mark.postgres),
    pytest.param(False, id="in-python"),
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def moscow():
    with timezone.override(MOSCOW):
        yield


@pytest.fixture
def flow(db):
    return FlowFactory()


def event(flow, **fields) -> InboundEvent:
    return InboundEventFactory(flow=flow, **fields)


def failed(flow, error: str, *, payload=None, failed_at=NOW) -> InboundEvent:
    created = event(flow, status=EventStatus.FAILED, last_error=error, payload=payload or {})
    # updated_at is set on save; put the failure where the test wants it.
    InboundEvent.objects.filter(pk=created.pk).update(updated_at=failed_at)
    return created


# --- Events per day and hour ----------------------------------------------------------


def test_an_event_at_23_30_utc_counts_on_the_next_moscow_day(flow):
    event(flow, received_at=datetime(2026, 3, 8, 23, 30, tzinfo=UTC))  # 02:30 on 9 March

    days = {bucket.start.isoformat(): bucket.total for bucket in events_by_day(now=NOW)}

    assert days["2026-03-09"] == 1
    assert days["2026-03-08"] == 0


def test_an_event_at_20_30_utc_stays_on_its_moscow_day(flow):
    event(flow, received_at=datetime(2026, 3, 8, 20, 30, tzinfo=UTC))  # 23:30 on 8 March

    days = {bucket.start.isoformat(): bucket.total for bucket in events_by_day(now=NOW)}

    assert days["2026-03-08"] == 1
    assert days["2026-03-09"] == 0


def test_days_are_the_last_thirty_with_empty_days_zero(flow):
    event(flow, received_at=NOW, status=EventStatus.DELIVERED)
    event(flow, received_at=NOW, status=EventStatus.FAILED)
    event(flow, received_at=NOW - timedelta(days=31))

    days = events_by_day(now=NOW)

    assert len(days) == 30
    assert days[0].start.isoformat() == "2026-02-09"
    assert days[-1].start.isoformat() == "2026-03-10"
    assert days[-1].counts == {"delivered": 1, "failed": 1}
    assert [bucket.total for bucket in days[:-1]] == [0] * 29


def test_hours_are_moscow_hours_with_empty_hours_zero(flow):
    event(flow, received_at=datetime(2026, 3, 10, 8, 59, tzinfo=UTC))  # 11:59 Moscow
    event(flow, received_at=datetime(2026, 3, 10, 8, 0, tzinfo=UTC), status=EventStatus.QUEUED)
    event(flow, received_at=datetime(2026, 3, 9, 10, 0, tzinfo=UTC))  # 13:00 yesterday
    event(flow, received_at=datetime(2026, 3, 9, 9, 59, tzinfo=UTC))  # 12:59 yesterday: out

    hours = events_by_hour(now=NOW)

    assert len(hours) == 24
    assert hours[0].start == datetime(2026, 3, 9, 13, 0, tzinfo=MOSCOW)
    assert hours[-1].start == datetime(2026, 3, 10, 12, 0, tzinfo=MOSCOW)
    assert hours[-1].total == 0
    assert hours[-2].counts == {"received": 1, "queued": 1}
    assert hours[0].total == 1
    assert sum(bucket.total for bucket in hours) == 3


def test_an_hour_late_in_the_utc_day_is_an_early_moscow_hour(flow):
    event(flow, received_at=datetime(2026, 3, 9, 23, 30, tzinfo=UTC))

    hours = {bucket.start.hour: bucket.total for bucket in events_by_hour(now=NOW)}

    assert hours[2] == 1


# --- Delivery time ------------------------------------------------------------------


@pytest.mark.parametrize("in_database", BOTH_PATHS)
def test_latency_percentiles_on_known_latencies(flow, in_database):
    for seconds in range(1, 11):  # 1 s .. 10 s, delivered an hour ago
        delivered_at = NOW - timedelta(hours=1)
        event(
            flow,
            status=EventStatus.DELIVERED,
            received_at=delivered_at - timedelta(seconds=seconds),
            delivered_at=delivered_at,
        )
    # Three days ago and slow: only in the 7-day window.
    event(
        flow,
        status=EventStatus.DELIVERED,
        received_at=NOW - timedelta(days=3, minutes=30),
        delivered_at=NOW - timedelta(days=3),
    )

    day, week = latency_percentiles(now=NOW, in_database=in_database)

    assert (day.count, week.count) == (10, 11)
    assert day.p50 == timedelta(seconds=5.5)
    assert day.p90 == timedelta(seconds=9.1)
    assert day.p99 == timedelta(seconds=9.91)
    assert day.maximum == timedelta(seconds=10)
    assert week.maximum == timedelta(minutes=30)
    assert week.p50 == timedelta(seconds=6)


@pytest.mark.parametrize("in_database", BOTH_PATHS)
def test_a_replayed_event_counts_from_its_replay(flow, in_database):
    event(
        flow,
        status=EventStatus.DELIVERED,
        received_at=NOW - timedelta(days=2),
        replayed_at=NOW - timedelta(minutes=1, seconds=2),
        delivered_at=NOW - timedelta(minutes=1),
    )

    day, _ = latency_percentiles(now=NOW, in_database=in_database)

    assert day.maximum == timedelta(seconds=2)


@pytest.mark.parametrize("in_database", BOTH_PATHS)
def test_latency_without_deliveries_is_empty(flow, in_database):
    event(flow, status=EventStatus.FAILED, received_at=NOW)

    day, week = latency_percentiles(now=NOW, in_database=in_database)

    assert (day.count, day.p50, day.maximum) == (0, None, None)
    assert week.count == 0


# --- Backlog ------------------------------------------------------------------------


def test_backlog_counts_pending_by_what_they_wait_for(flow):
    event(
        flow,
        status=EventStatus.RECEIVED,
        received_at=NOW - timedelta(hours=5),
        next_attempt_at=NOW - timedelta(seconds=5),
    )
    event(
        flow,
        status=EventStatus.QUEUED,
        received_at=NOW - timedelta(hours=1),
        next_attempt_at=NOW + timedelta(minutes=10),
    )
    event(
        flow, status=EventStatus.QUEUED, received_at=NOW - timedelta(hours=2), next_attempt_at=None
    )
    event(flow, status=EventStatus.DELIVERED, received_at=NOW - timedelta(days=9))
    event(flow, status=EventStatus.FAILED, received_at=NOW - timedelta(days=8))

    backlog = backlog_summary(now=NOW)

    assert backlog.pending == 3
    assert (backlog.due, backlog.scheduled, backlog.paused) == (1, 1, 1)
    assert backlog.failed == 1
    assert backlog.oldest_age == timedelta(hours=5)


def test_an_empty_backlog_has_no_oldest_event(flow):
    event(flow, status=EventStatus.DELIVERED, received_at=NOW)

    backlog = backlog_summary(now=NOW)

    assert (backlog.pending, backlog.oldest_age, backlog.oldest_received_at) == (0, None, None)


# --- Failure reasons ------------------------------------------------------------------


def test_reasons_differing_only_in_numbers_normalise_alike():
    assert reason_normalise("Lead 123 not found") == reason_normalise("Lead 4567 not found")
    assert reason_normalise("Lead 123 not found") != reason_normalise("Flow has no account")


@pytest.mark.parametrize("in_database", BOTH_PATHS)
def test_failed_events_are_grouped_by_reason_with_counts(flow, auditor, in_database):
    first = failed(flow, "Lead 123 not found in AmoCRM", failed_at=NOW - timedelta(hours=3))
    failed(flow, "Lead 456 not found in AmoCRM", failed_at=NOW - timedelta(hours=1))
    failed(flow, "Lead 789 not found in AmoCRM", failed_at=NOW - timedelta(hours=2))
    failed(flow, "Flow 'x' has no AmoCRM account.", failed_at=NOW)
    event(flow, status=EventStatus.QUEUED, last_error="Lead 1 not found in AmoCRM")

    groups, more = failure_groups(user=auditor, in_database=in_database)

    assert [(group.example, group.count) for group in groups] == [
        ("Lead 123 not found in AmoCRM", 3),
        ("Flow 'x' has no AmoCRM account.", 1),
    ]
    assert groups[0].example_event_id == first.pk
    assert groups[0].last_failed_at == NOW - timedelta(hours=1)
    assert groups[0].search == "not found in AmoCRM"
    assert more is False


@pytest.mark.parametrize("in_database", BOTH_PATHS)
def test_more_reasons_than_shown_are_announced(flow, auditor, in_database):
    for word in ("alpha", "beta", "gamma"):
        failed(flow, f"Problem {word}")

    groups, more = failure_groups(user=auditor, limit=2, in_database=in_database)

    assert len(groups) == 2
    assert more is True


PHONE_A = {"phone": "79123123123", "name": "Иванов Иван"}
PHONE_B = {"phone": "79998887766", "name": "Петров Пётр"}


def test_reason_examples_are_masked_with_their_own_events_data(flow, auditor):
    failed(flow, "AmoCRM refused phone 79123123123", payload=PHONE_A)
    failed(flow, "AmoCRM refused phone 79998887766", payload=PHONE_B)
    failed(flow, "AmoCRM refused the name Петров Пётр", payload=PHONE_B)

    groups, _ = failure_groups(user=auditor)

    assert [(group.example, group.count) for group in groups] == [
        ("AmoCRM refused phone +7 *** *** 31 23", 2),
        ("AmoCRM refused the name П*** П***", 1),
    ]


def test_reason_examples_are_shown_whole_to_personal_data_auditors(flow, pd_auditor):
    failed(flow, "AmoCRM refused phone 79123123123 of Иванов Иван", payload=PHONE_A)

    groups, _ = failure_groups(user=pd_auditor)

    assert groups[0].example == "AmoCRM refused phone 79123123123 of Иванов Иван"


def test_the_search_for_a_reason_holds_no_personal_data(flow, pd_auditor):
    failed(flow, "Lead 5: AmoCRM refused the name Иванов Иван Иванович", payload=PHONE_A)

    groups, _ = failure_groups(user=pd_auditor)

    assert groups[0].search == "AmoCRM refused the name"


# --- Accounts and mappings ------------------------------------------------------------


def test_a_connected_account_shows_token_expiry_and_refresh_age(db):
    account = AccountFactory(name="Clinic")
    TokenFactory(
        account=account, expires_at=NOW + timedelta(hours=2), refreshed_at=NOW - timedelta(days=10)
    )

    (health,) = accounts_health(now=NOW)

    assert (health.name, health.connected, health.long_lived) == ("Clinic", True, False)
    assert health.token_expires_in == timedelta(hours=2)
    assert not health.token_expired
    assert health.refresh_token_age == timedelta(days=10)
    assert health.refresh_days_left == 80


def test_a_disconnected_account_shows_its_reason_and_expired_token(db):
    account = AccountFactory(state=Account.State.DISCONNECTED, state_reason="Refresh refused")
    TokenFactory(
        account=account, expires_at=NOW - timedelta(hours=1), refreshed_at=NOW - timedelta(days=95)
    )

    (health,) = accounts_health(now=NOW)

    assert not health.connected
    assert health.state_reason == "Refresh refused"
    assert health.token_expired
    assert health.refresh_days_left == 0


def test_a_long_lived_account_without_oauth_pair(db):
    AccountFactory(long_lived_token="long-lived-token-value")

    (health,) = accounts_health(now=NOW)

    assert health.long_lived
    assert (health.token_expires_at, health.refresh_token_age) == (None, None)


def test_a_mapping_whose_field_left_the_catalogue_is_flagged(flow):
    CustomFieldFactory(account=flow.account, field_id=111)
    FieldMappingFactory(flow=flow, field_id=111, source="paid")
    FieldMappingFactory(flow=flow, field_id=999999, source="total")

    (missing,) = missing_fields()

    assert (missing.flow_id, missing.source, missing.field_id) == (flow.pk, "total", 999999)


def test_all_figures_take_a_handful_of_queries(flow, auditor, django_assert_num_queries):
    failed(flow, "Lead 123 not found in AmoCRM")
    event(flow, status=EventStatus.DELIVERED, received_at=NOW, delivered_at=NOW)
    auditor.get_all_permissions()  # cached per user, as on any admin page

    with django_assert_num_queries(8):
        dashboard_build(user=auditor, now=NOW)


# --- Charts and formats ---------------------------------------------------------------


def test_the_y_axis_ends_on_a_round_number():
    assert axis_top(0) == (1, 1)
    assert axis_top(3) == (3, 1)
    assert axis_top(7) == (8, 2)
    assert axis_top(1234) == (1500, 500)


def test_each_chart_column_carries_its_exact_counts_as_title():
    svg = stacked_bars_svg(
        bars=[
            Bar(counts={"delivered": 12, "failed": 3}, label="10.03", title="10.03: 15 events"),
            Bar(counts={}, label="", title="11.03: 0 events"),
        ],
        description="Events",
    )

    assert svg.count("<title>") == 2
    assert "<title>10.03: 15 events</title>" in svg
    assert svg.count('data-status="delivered"') == 1
    assert svg.count('data-status="failed"') == 1


def test_durations_take_the_largest_unit_and_one_decimal_at_most():
    assert sync_duration(timedelta(milliseconds=250)) == "250 ms"
    assert sync_duration(timedelta(seconds=19.98)) == "20 s"
    assert sync_duration(timedelta(minutes=90)) == "1.5 h"
    assert sync_duration(None) == "—"


def test_durations_use_russian_number_formats():
    with translation.override("ru"):
        assert sync_duration(timedelta(seconds=1.5)).startswith("1,5")
        assert sync_duration(timedelta(hours=30)).startswith("30")
        assert sync_duration(timedelta(days=3, hours=12)).startswith("3,5")


# --- The index page -------------------------------------------------------------------


def external_references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html)


def test_the_index_shows_the_dashboard_to_an_auditor_without_external_urls(auditor_client, flow):
    event(flow, status=EventStatus.DELIVERED, received_at=timezone.now())

    response = auditor_client.get(reverse("admin:index"))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="sync-dashboard"' in html
    assert html.count('<svg class="sync-chart"') == 2
    assert "<title>" in html
    assert external_references(html) == []
    # The app list stays, below the dashboard.
    assert html.index('id="sync-dashboard"') < html.index('id="content-main"')


@pytest.mark.parametrize("role_client", ["hub_admin_client", "operator_client"])
def test_every_role_sees_the_dashboard(request, role_client, db):
    response = request.getfixturevalue(role_client).get(reverse("admin:index"))

    assert 'id="sync-dashboard"' in response.content.decode()


def test_staff_without_the_audit_trail_sees_the_plain_index(client, db):
    client.force_login(UserFactory())

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert "sync-dashboard" not in response.content.decode()


def test_the_index_masks_reason_examples_for_an_auditor(auditor_client, flow):
    failed(flow, "AmoCRM refused phone 79123123123 of Иванов Иван", payload=PHONE_A)

    html = auditor_client.get(reverse("admin:index")).content.decode()

    assert "И*** И***" in html
    assert "Иванов" not in html
    assert "79123123123" not in html


def test_a_reason_links_to_its_failed_events(auditor_client, flow):
    failed(flow, "Lead 123 not found in AmoCRM")
    failed(flow, "Lead 456 not found in AmoCRM")
    event(flow, status=EventStatus.FAILED, last_error="Something else")

    html = auditor_client.get(reverse("admin:index")).content.decode()
    link = re.search(r'href="([^"]*last_error__contains[^"]*)"', html).group(1)
    listing = auditor_client.get(link.replace("&amp;", "&"))

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2


def test_the_index_flags_accounts_and_missing_fields(hub_admin_client, flow):
    Account.objects.filter(pk=flow.account_id).update(
        state=Account.State.DISCONNECTED, state_reason="Refresh refused"
    )
    CustomFieldFactory(account=flow.account, field_id=111)
    FieldMappingFactory(flow=flow, field_id=999999, source="total")

    html = hub_admin_client.get(reverse("admin:index")).content.decode()

    assert "Refresh refused" in html
    assert reverse("admin:amocrm_account_change", args=[flow.account_id]) in html
    assert reverse("admin:sync_flow_change", args=[flow.pk]) in html
    assert "999999" in html
