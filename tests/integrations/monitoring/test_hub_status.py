"""manage.py hub_status: the /readyz picture, the backlog by flow, the last errors."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.amocrm.models import Account
from integrations.sync.models import EventStatus
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item


def hub_status(*args) -> str:
    out = StringIO()
    call_command("hub_status", *args, stdout=out)
    return out.getvalue()


def test_a_ready_hub_says_so_and_exits_zero(account):
    output = hub_status()

    assert output.splitlines()[0] == "Readiness: ok"
    assert "  [ok] database" in output
    assert "  [ok] broker" in output
    assert f"  [ok] account:{account.name}" in output
    assert "Backlog by flow:\n  nothing waiting, nothing failed" in output
    assert "Last errors:\n  none" in output


def test_a_disconnected_account_fails_the_command(account):
    account.state_set(Account.State.DISCONNECTED, "Refresh refused")
    account.save()
    out = StringIO()

    with pytest.raises(CommandError, match=f"Not ready: account:{account.name}"):
        call_command("hub_status", stdout=out)

    assert out.getvalue().splitlines()[0] == "Readiness: FAIL"
    assert f"  [FAIL] account:{account.name}" in out.getvalue()


def test_the_backlog_is_counted_by_flow(booked_flow, mc_flow):
    now = timezone.now()
    InboundEventFactory(flow=booked_flow, status=EventStatus.QUEUED, next_attempt_at=now)
    InboundEventFactory(
        flow=booked_flow, status=EventStatus.QUEUED, next_attempt_at=now + timedelta(hours=1)
    )
    InboundEventFactory(flow=mc_flow, status=EventStatus.QUEUED, next_attempt_at=None)
    InboundEventFactory(flow=mc_flow, status=EventStatus.FAILED, next_attempt_at=None)

    backlog = json.loads(hub_status("--json"))["backlog"]

    assert backlog == sorted(
        [
            {
                "flow": booked_flow.name,
                "pending": 2,
                "due": 1,
                "scheduled": 1,
                "paused": 0,
                "failed": 0,
            },
            {
                "flow": mc_flow.name,
                "pending": 1,
                "due": 0,
                "scheduled": 0,
                "paused": 1,
                "failed": 1,
            },
        ],
        key=lambda row: row["flow"],
    )


def test_last_errors_show_the_first_line_masked(booked_flow):
    item = load_item("rdesk-booked.json")
    event = InboundEventFactory(
        flow=booked_flow,
        payload=item,
        status=EventStatus.FAILED,
        next_attempt_at=None,
        last_error=(
            "AmoCRM refused the update: Фамилия1 Имя1 Отчество1 is not a number\nsecond line"
        ),
    )

    output = hub_status()

    line = next(line for line in output.splitlines() if line.startswith(f"  #{event.pk} "))
    assert booked_flow.name in line
    assert "AmoCRM refused the update:" in line
    assert "Фамилия1" not in line
    assert "second line" not in output


def test_the_number_of_errors_shown_is_chosen(booked_flow):
    for _ in range(3):
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, next_attempt_at=None)

    report = json.loads(hub_status("--json", "--errors", "2"))

    assert len(report["last_errors"]) == 2
    assert report["readiness"]["status"] == "ok"
