"""Storing accepted items in one statement: what it writes, the nudge it spares, a restart."""

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from integrations.sync.delivery import nudge_pending
from integrations.sync.flow_routes import flow_route, flow_routes_forget
from integrations.sync.intake_store import events_insert
from integrations.sync.models import AccountDrain, EventStatus, InboundEvent
from integrations.sync.views import IntakeView
from tests.conftest import fixture_bytes, fixture_json


def unsaved(flow, items) -> list[InboundEvent]:
    now = timezone.now()
    return [
        InboundEvent(
            flow=flow,
            received_at=now,
            raw_body=b"[]",
            body_hash="0" * 64,
            item_index=index,
            payload=item,
            next_attempt_at=now,
        )
        for index, item in enumerate(items)
    ]


def post(client, path="/zdrav/booked"):
    body = fixture_bytes("rdesk/rdesk-booked.json")
    return client.post(path, body, content_type="application/json")


def test_each_item_is_stored_as_the_orm_would_store_it(booked_flow):
    items = fixture_json("rdesk/intake/booked-batch.json")

    ids, _ = events_insert(unsaved(booked_flow, items), account_id=booked_flow.account_id)

    stored = list(InboundEvent.objects.filter(pk__in=ids).order_by("item_index"))
    assert [e.payload for e in stored] == items
    assert {e.status for e in stored} == {EventStatus.RECEIVED}
    assert all(e.attempts == 0 and e.updated_at is not None for e in stored)


def test_the_accounts_nudge_mark_comes_back_with_the_ids(booked_flow):
    marked = timezone.now()
    AccountDrain.objects.create(account=booked_flow.account, nudged_at=marked)

    _, nudged_at = events_insert(unsaved(booked_flow, [{}]), account_id=booked_flow.account_id)

    assert nudged_at == marked
    assert nudge_pending(nudged_at)


def test_no_nudge_is_sent_while_one_is_on_its_way(
    booked_flow, client, enqueued, django_capture_on_commit_callbacks
):
    AccountDrain.objects.create(account=booked_flow.account, nudged_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert post(client).status_code == 200

    assert not enqueued.called


def test_a_nudge_is_sent_when_none_is_on_its_way(
    booked_flow, client, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client).status_code == 200

    assert [call.args[0] for call in enqueued.call_args_list] == [(booked_flow.account_id,)]


def server_closes_the_connection() -> None:
    """Ends this connection's server process, as a PostgreSQL restart does."""
    connection.ensure_connection()
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname="postgres"
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_insert_is_run_again_on_a_new_connection_after_a_restart(booked_flow):
    server_closes_the_connection()

    ids, _ = events_insert(unsaved(booked_flow, [{}]), account_id=booked_flow.account_id)

    assert InboundEvent.objects.filter(pk__in=ids).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_flows_are_reloaded_on_a_new_connection_after_a_restart(booked_flow):
    flow_routes_forget()
    server_closes_the_connection()

    flow, _ = flow_route("/zdrav/booked")

    assert flow == booked_flow


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_refusal_is_stored_on_a_new_connection_after_a_restart(booked_flow, rf):
    server_closes_the_connection()
    request = rf.post("/zdrav/booked", b'{"x": 1}', content_type="application/json")

    response = IntakeView.as_view()(request, endpoint="zdrav/booked")

    assert response.status_code == 422
    assert InboundEvent.objects.filter(status=EventStatus.REJECTED).count() == 1


def test_a_query_of_thousands_of_fields_is_still_answered_and_stored(booked_flow, client):
    query = "&".join(f"f{n}=1" for n in range(1500))

    response = client.post(
        f"/zdrav/booked?{query}",
        fixture_bytes("rdesk/rdesk-booked.json"),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert InboundEvent.objects.filter(status=EventStatus.RECEIVED).count() == 1


@pytest.mark.postgres
def test_a_large_body_is_compressed_with_lz4(booked_flow):
    event = unsaved(booked_flow, [{"text": "Здравница " * 2000}])[0]
    event.raw_body = ("Здравница " * 2000).encode()
    (pk,), _ = events_insert([event], account_id=booked_flow.account_id)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(raw_body), pg_column_compression(payload) "
            "FROM sync_inboundevent WHERE id = %s",
            [pk],
        )
        assert cursor.fetchone() == ("lz4", "lz4")
