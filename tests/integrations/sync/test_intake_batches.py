"""The ASGI intake's inserts: requests that arrive together share one statement, and one
request PostgreSQL refuses fails alone.

The inserts run on the intake's own pooled connections, which see only committed rows.
"""

import asyncio

import psycopg
import pytest
from django.utils import timezone

from integrations.sync import intake_batches
from integrations.sync.intake_batches import events_insert_async, inserters_close
from integrations.sync.intake_store import events_unsaved
from integrations.sync.models import Flow, InboundEvent
from tests.conftest import fixture_json, in_own_loop

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def a_request(flow, items: list[dict], **fields) -> dict:
    """What ``events_insert_async`` takes for one request, ``fields`` overriding its own."""
    common = {
        "flow": flow,
        "received_at": timezone.now(),
        "remote_addr": "10.0.0.1",
        "headers": {},
        "raw_body": b"[]",
        "body_hash": "0" * 64,
        **fields,
    }
    return {"common": common, "items": items, "due": common["received_at"]}


def inserted_together(requests: list[dict]):
    """Each request's ids (or its error), all inserted at once; and how many statements ran."""
    statements = []

    async def run():
        inserters = await intake_batches._inserters()
        fetch = inserters._fetch

        async def counted(sql, params):
            statements.append(len(params[0].obj))
            return await fetch(sql, params)

        inserters._fetch = counted
        try:
            return await asyncio.gather(
                *(events_insert_async(**request) for request in requests), return_exceptions=True
            )
        finally:
            await inserters_close()

    return in_own_loop(run), statements


def test_requests_that_arrive_together_share_a_statement(booked_flow, settings):
    settings.HUB_INTAKE_DB_CONNECTIONS = 1
    requests = [a_request(booked_flow, [{"n": n}, {"n": n}]) for n in range(10)]

    answers, statements = inserted_together(requests)

    assert statements == [20]
    for n, ids in enumerate(answers):
        stored = InboundEvent.objects.filter(pk__in=ids).order_by("pk")
        assert [(e.payload, e.item_index) for e in stored] == [({"n": n}, 0), ({"n": n}, 1)]


def test_a_large_body_with_hundreds_of_items_is_stored_once_per_statement(booked_flow):
    body = b"x" * 2**20  # the largest body the intake takes by default
    items = [{"n": n} for n in range(500)]

    (ids,), statements = inserted_together([a_request(booked_flow, items, raw_body=body)])

    assert statements == [500]
    stored = InboundEvent.objects.filter(pk__in=ids).order_by("pk")
    assert [event.payload for event in stored] == items
    assert bytes(stored.last().raw_body) == body


def test_requests_whose_bodies_pass_the_limit_together_get_statements_of_their_own(
    booked_flow, settings, monkeypatch
):
    settings.HUB_INTAKE_DB_CONNECTIONS = 1
    monkeypatch.setattr(intake_batches, "MOST_BODY_BYTES", 100)
    requests = [a_request(booked_flow, [{"n": n}], raw_body=b"x" * 60) for n in range(3)]

    answers, statements = inserted_together(requests)

    assert statements == [1, 1, 1]
    assert [InboundEvent.objects.get(pk__in=ids).payload["n"] for ids in answers] == [0, 1, 2]


def test_a_request_postgresql_refuses_fails_alone(booked_flow, settings):
    settings.HUB_INTAKE_DB_CONNECTIONS = 1
    refused = a_request(Flow(pk=booked_flow.pk + 1000), [{"n": 1}])  # no such flow
    requests = [
        a_request(booked_flow, [{"n": 0}]),
        refused,
        a_request(booked_flow, [{"n": 2}]),
    ]

    (first, second, third), statements = inserted_together(requests)

    assert isinstance(second, psycopg.errors.ForeignKeyViolation)
    assert InboundEvent.objects.get(pk__in=first).payload == {"n": 0}
    assert InboundEvent.objects.get(pk__in=third).payload == {"n": 2}
    assert statements == [3, 1, 1, 1]


def test_a_request_with_a_value_postgresql_cannot_read_fails_alone(booked_flow, settings):
    settings.HUB_INTAKE_DB_CONNECTIONS = 1
    requests = [
        a_request(booked_flow, [{"n": 0}]),
        a_request(booked_flow, [{"n": 1}], remote_addr="999.0.0.1"),
    ]

    (first, second), statements = inserted_together(requests)

    assert isinstance(second, psycopg.errors.InvalidTextRepresentation)
    assert InboundEvent.objects.get(pk__in=first).payload == {"n": 0}
    assert statements == [2, 1, 1]


def test_a_request_with_a_value_json_cannot_hold_fails_alone(booked_flow, settings):
    settings.HUB_INTAKE_DB_CONNECTIONS = 1
    requests = [
        a_request(booked_flow, [{"n": 0}]),
        a_request(booked_flow, [{"n": {1, 2}}]),  # a set: JSON has none
    ]

    (first, second), statements = inserted_together(requests)

    assert isinstance(second, TypeError)
    assert InboundEvent.objects.get(pk__in=first).payload == {"n": 0}
    assert statements == [2, 1, 1]  # the batch failed in the client, then each alone


def test_a_lone_request_is_stored_as_the_orm_would_store_it(booked_flow):
    (ids,), _ = inserted_together([a_request(booked_flow, [{"n": 0}])])

    event = InboundEvent.objects.get(pk__in=ids)
    assert (event.status, event.attempts, event.claim_token) == ("received", 0, None)
    assert event.next_attempt_at == event.received_at
    assert str(event.remote_addr) == "10.0.0.1"


# Values the model fields prepare in their own ways: addresses in other spellings,
# text to escape, identifiers to cut or skip, numbers JSON holds but a float does not.
AWKWARD_ITEMS = [
    {"id": True, "lead_id": 23392663, "name": 'Ёлкина "Ель" \\ \n\t\u0001'},
    {"id": "x" * 70, "lead_id": None, "big": 2**70, "small": -(2**70), "share": 0.1},
    {"id": 5, "nested": [{"fio": "Фамилия Имя"}, [], {}], "empty": ""},
]


@pytest.mark.parametrize("address", ["10.0.0.1", "2001:DB8:0:0::1", "::ffff:10.0.0.1", None, ""])
def test_rows_are_stored_as_the_orm_stores_them(booked_flow, address):
    request = a_request(
        booked_flow,
        [*fixture_json("rdesk/intake/booked-batch.json"), *AWKWARD_ITEMS],
        remote_addr=address,
        headers={"User-Agent": "RDESK «Здравница»", "X-Quote": '"\\'},
        raw_body=b"\xff\x00 any bytes, \xd0\x97",
    )

    (ids,), _ = inserted_together([request])
    orm_ids = [e.pk for e in InboundEvent.objects.bulk_create(events_unsaved(**request))]

    assert len(ids) == len(orm_ids) == len(request["items"])
    assert stored(ids) == stored(orm_ids)


def stored(ids: list[int]) -> list[dict]:
    """Every column of the events, in order, but their ids and the time of the insert."""
    rows = InboundEvent.objects.filter(pk__in=ids).order_by("pk").values()
    return [
        {**row, "raw_body": bytes(row["raw_body"]), "id": None, "updated_at": None} for row in rows
    ]


def test_without_prepared_statements_for_a_pooler_the_rows_are_stored_alike(booked_flow, settings):
    settings.HUB_INTAKE_PREPARE = False

    (ids,), _ = inserted_together([a_request(booked_flow, [{"n": 0}, {"n": 1}])])

    assert [e.payload for e in InboundEvent.objects.filter(pk__in=ids).order_by("pk")] == [
        {"n": 0},
        {"n": 1},
    ]
