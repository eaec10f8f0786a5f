"""The intake's enqueue on commit when it names the account: the nudge, nothing else."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.sync.delivery import events_enqueue
from integrations.sync.models import EventStatus
from tests.factories import InboundEventFactory


def test_known_account_is_nudged_without_reading_or_marking_the_events(booked_flow, enqueued):
    events = InboundEventFactory.create_batch(3, flow=booked_flow, status=EventStatus.RECEIVED)

    with CaptureQueriesContext(connection) as queries:
        events_enqueue([e.pk for e in events], account_ids=[booked_flow.account_id])

    assert [call.args[0] for call in enqueued.call_args_list] == [(booked_flow.account_id,)]
    assert not [q for q in queries if "sync_inboundevent" in q["sql"]]
    for event in events:
        event.refresh_from_db()
        assert event.status == EventStatus.RECEIVED  # claimed as they are, like queued


def test_flows_without_an_account_are_nudged_once_as_none(db, enqueued):
    events_enqueue([1, 2], account_ids=[None, None])

    assert [call.args[0] for call in enqueued.call_args_list] == [(None,)]
