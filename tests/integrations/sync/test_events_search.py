"""The name search on PostgreSQL: the names it looks in, and the index that serves it.

The trigram index covers only the names (migration sync/0014): an event's write no longer
indexes the trigrams of its whole payload, and the search still comes from the index. The
function that gives the names is one expression PostgreSQL inlines (sync/0015): no query
is planned and run for each write of an event.
"""

import json

import pytest
from django.db import connection

from integrations.sync.admin.events_search import events_personal_search
from integrations.sync.models import InboundEvent
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def names_of(payload) -> set[str] | None:
    """The distinct names the function finds (a name inside an array may come twice)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT amohub_event_names(%s::jsonb)",
            [InboundEvent.payload.field.get_db_prep_save(payload, connection)],
        )
        (names,) = cursor.fetchone()
    return None if names is None else set(json.loads(names))


def test_the_names_are_every_name_and_fio_at_any_depth():
    booking = load_item("rdesk-booked.json")

    assert names_of(booking) == {
        "Фамилия1 Имя1 Отчество1",
        "Фамилия1 Имя1 Отчество2",
        "Фамилия2 Имя2 Отчество2",
    }


def test_names_in_nested_objects_and_arrays_are_found():
    payload = {"x": [[{"fio": "A B"}]], "n": {"name": {"name": "deep"}}, "name2": "not a name"}

    assert names_of(payload) == {"A B", "deep"}


def test_values_that_are_not_text_are_no_names():
    assert names_of({"name": 5, "guests": [{"fio": None}], "id": 1}) == set()


def test_the_function_is_inlined_into_the_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('event_names_trgm_idx'::regclass)")
        (definition,) = cursor.fetchone()
        cursor.execute("EXPLAIN VERBOSE SELECT amohub_event_names(payload) FROM sync_inboundevent")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "amohub_event_names(payload)" in definition
    assert "jsonb_path_query_array" in plan  # the body, not a call of the function


def test_a_name_with_a_quote_is_found(booked_flow):
    booking = {**load_item("rdesk-booked.json"), "name": 'Д"Артаньян Шарль'}
    InboundEventFactory(flow=booked_flow, payload=booking)

    assert events_personal_search(InboundEvent.objects.all(), 'Д"Артаньян').count() == 1


def test_the_search_is_served_by_the_names_index(booked_flow):
    InboundEventFactory(flow=booked_flow, payload=load_item("rdesk-booked.json"))
    found = events_personal_search(InboundEvent.objects.all(), "Имя2")

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = found.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "event_names_trgm_idx" in plan
    assert found.count() == 1


def test_the_whole_payloads_trigram_index_is_gone():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'sync_inboundevent' "
            "AND indexdef LIKE '%gin_trgm_ops%'"
        )
        assert [row[0] for row in cursor.fetchall()] == ["event_names_trgm_idx"]
