"""Beat keeps quiet accounts connected: pairs are renewed long before AmoCRM revokes them.

AmoCRM revokes a refresh token left unused for three months; the emulator does too.
"""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from hub.celery import app
from integrations.amocrm.models import Account, Token
from integrations.amocrm.tasks import refresh_tokens
from tests.factories import AccountFactory, TokenFactory
from tests.integrations.amocrm.consent import closed_url

DAY = 24 * 3600
THREE_MONTHS = 90 * DAY


def last_refreshed(account, *, days_ago: float) -> Token:
    """Makes the stored pair ``days_ago`` days old (its access token long expired)."""
    Token.objects.filter(account=account).update(
        refreshed_at=timezone.now() - timedelta(days=days_ago),
        expires_at=timezone.now() - timedelta(days=days_ago - 1),
    )
    return Token.objects.get(account=account)


def token_requests(emulator) -> list[dict]:
    return [r for r in emulator.state.requests if r["path"] == "/oauth2/access_token"]


# --- the schedule ---------------------------------------------------------------------


def test_beat_schedule_runs_the_refresh_task_every_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-amocrm-tokens"]

    assert entry == {"task": "integrations.amocrm.tasks.refresh_tokens", "schedule": 3600.0}
    app.loader.import_default_modules()
    assert "integrations.amocrm.tasks.refresh_tokens" in app.tasks


def test_beat_database_scheduler_installs_the_refresh_task(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    # Beat closes stale connections between ticks; here that would end the test's transaction.
    with mock.patch("django_celery_beat.schedulers.close_old_connections"):
        DatabaseScheduler(app=app)

    task = PeriodicTask.objects.get(name="refresh-amocrm-tokens")
    assert task.task == "integrations.amocrm.tasks.refresh_tokens"
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (3600, "seconds")


def test_pairs_are_renewed_far_inside_the_refresh_tokens_life(settings):
    assert settings.AMOCRM_PROACTIVE_REFRESH_AGE <= THREE_MONTHS / 4


# --- renewing -------------------------------------------------------------------------


def test_pair_refreshed_three_months_ago_is_renewed(emulator_account, emulator):
    # No webhook for almost three months: the refresh token is 89 days old on both sides.
    old = last_refreshed(emulator_account, days_ago=89)
    emulator.state.age_refresh_tokens(89 * DAY)

    assert refresh_tokens() == {"refreshed": 1, "failed": 0}

    assert emulator.state.counters["refresh"] == 1
    assert emulator.state.counters["invalid_grant"] == 0
    token = Token.objects.get(account=emulator_account)
    assert token.refresh_token != old.refresh_token
    assert emulator.state.access_token_valid(token.access_token)
    assert (timezone.now() - token.refreshed_at).total_seconds() < 60
    assert (token.expires_at - timezone.now()).total_seconds() > 86000
    # The renewed refresh token starts a new three months at AmoCRM too.
    renewed = emulator.state.refresh_tokens[token.refresh_token]
    assert renewed.valid(emulator.state.now() + THREE_MONTHS - DAY)
    emulator_account.refresh_from_db()
    assert emulator_account.state == Account.State.CONNECTED


def test_quiet_account_stays_connected_past_three_months_of_beat_runs(emulator_account, emulator):
    # Each step: a week passes with no webhook, then beat runs; 14 weeks in all.
    for _ in range(14):
        last_refreshed(emulator_account, days_ago=7)
        emulator.state.age_refresh_tokens(7 * DAY)
        assert refresh_tokens() == {"refreshed": 1, "failed": 0}

    assert emulator.state.counters["refresh"] == 14
    assert emulator.state.counters["invalid_grant"] == 0
    emulator_account.refresh_from_db()
    assert emulator_account.state == Account.State.CONNECTED


def test_recently_refreshed_pair_is_left_alone(emulator_account, emulator):
    before = last_refreshed(emulator_account, days_ago=1)

    assert refresh_tokens() == {"refreshed": 0, "failed": 0}

    assert token_requests(emulator) == []
    assert Token.objects.get(account=emulator_account).refresh_token == before.refresh_token


def test_long_lived_token_account_is_skipped(emulator_account, emulator):
    Account.objects.filter(pk=emulator_account.pk).update(long_lived_token="long-lived-value")
    last_refreshed(emulator_account, days_ago=89)

    assert refresh_tokens() == {"refreshed": 0, "failed": 0}

    assert token_requests(emulator) == []


def test_disconnected_account_is_skipped(emulator_account, emulator):
    Account.objects.filter(pk=emulator_account.pk).update(state=Account.State.DISCONNECTED)
    last_refreshed(emulator_account, days_ago=89)

    assert refresh_tokens() == {"refreshed": 0, "failed": 0}

    assert token_requests(emulator) == []


def test_refused_refresh_disconnects_the_account_with_amocrms_reason(emulator_account, emulator):
    # Beat was down for more than three months: AmoCRM has revoked the refresh token.
    last_refreshed(emulator_account, days_ago=91)
    emulator.state.age_refresh_tokens(91 * DAY)

    assert refresh_tokens() == {"refreshed": 0, "failed": 1}

    assert emulator.state.counters["invalid_grant"] == 1
    emulator_account.refresh_from_db()
    assert emulator_account.state == Account.State.DISCONNECTED
    assert emulator_account.state_reason.startswith("Refresh refused: ")
    assert emulator_account.state_reason.endswith("(Token has been revoked)")


def test_unreachable_amocrm_fails_the_run_but_keeps_the_account_connected(db):
    account = AccountFactory(base_url=closed_url())
    TokenFactory(account=account, refreshed_at=timezone.now() - timedelta(days=30))

    assert refresh_tokens() == {"refreshed": 0, "failed": 1}

    account.refresh_from_db()
    assert account.state == Account.State.CONNECTED


def test_one_failing_account_does_not_stop_the_others(emulator_account, emulator):
    broken = AccountFactory(base_url=closed_url())
    TokenFactory(account=broken, refreshed_at=timezone.now() - timedelta(days=30))
    last_refreshed(emulator_account, days_ago=30)

    assert refresh_tokens() == {"refreshed": 1, "failed": 1}

    assert emulator.state.counters["refresh"] == 1


@pytest.mark.parametrize(("days", "renewed"), [(6, False), (8, True)])
def test_pairs_older_than_the_configured_age_are_renewed(
    emulator_account, emulator, settings, days, renewed
):
    settings.AMOCRM_PROACTIVE_REFRESH_AGE = 7 * DAY
    last_refreshed(emulator_account, days_ago=days)

    refresh_tokens()

    assert emulator.state.counters["refresh"] == int(renewed)
