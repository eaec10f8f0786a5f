"""The name search on PostgreSQL: the names it looks in, and the index that serves it.

The trigram index covers only the names (migration sync/0014): an event's write no longer
indexes the trigrams of its whole payload, and the search still comes from the index.
"""

import pytest
from django.db import connection

from integrations.sync.admin.events_search import events_personal_search
from integrations.sync.models import InboundEvent
from tests.factories import InboundEventFactory
from tests.integrations.rdesk.payloads import load_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def names_of(payload) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT amohub_event_names(%s::jsonb)",
            [InboundEvent.payload.field.get_db_prep_save(payload, connection)],
        )
        return cursor.fetchone()[0]


def test_the_names_are_every_name_and_fio_at_any_depth_one_per_line():
    booking = load_item("rdesk-booked.json")

    assert names_of(booking).split("\n") == [
        "Фамилия1 Имя1 Отчество1",
        "Фамилия1 Имя1 Отчество2",
        "Фамилия2 Имя2 Отчество2",
    ]


def test_values_that_are_not_text_are_no_names():
    assert names_of({"name": 5, "guests": [{"fio": None}], "id": 1}) is None


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
