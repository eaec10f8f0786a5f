"""CSV export of the filtered events list: Excel-ready, masked unless allowed, recorded."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from integrations.sync.models import EventStatus, InboundEvent, PersonalDataAccess
from integrations.sync.roles import OPERATORS, PERSONAL_DATA
from tests.factories import InboundEventFactory, UserFactory
from tests.integrations.rdesk.payloads import load_item
from tests.integrations.sync.test_masking import leaked_in

EXPORT = "admin:sync_inboundevent_export"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def pd_operator(db):
    return UserFactory(username="pd-operator", role=[OPERATORS, PERSONAL_DATA])


@pytest.fixture
def history(booked_flow, mc_flow):
    booking = load_item("rdesk-booked.json")
    card = load_item("rdesk-mc.json")
    return {
        "failed": InboundEventFactory(
            flow=booked_flow,
            payload=booking,
            status=EventStatus.FAILED,
            rdesk_id="88888",
            lead_id="23392663",
            attempts=3,
            received_at=datetime(2026, 12, 1, 16, 27, 5, tzinfo=UTC),
            last_error=f"ValidationError: {booking['extData']['guests'][1]['fio']} refused",
        ),
        "delivered": InboundEventFactory(
            flow=mc_flow,
            payload=card,
            status=EventStatus.DELIVERED,
            rdesk_id="185588",
            lead_id="11642589",
            attempts=1,
            delivered_at=datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
        ),
    }


def export(client, user, query: str = ""):
    client.force_login(user)
    return client.get(reverse(EXPORT) + query)


def body_of(response) -> str:
    assert response.status_code == 200
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


def rows_of(response) -> list[dict]:
    text = body_of(response)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))


def test_export_is_utf8_with_a_byte_order_mark_and_semicolons(client, operator, history):
    response = export(client, operator)

    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8").splitlines()[0] == (
        "\ufeffEvent id;Received;Flow;Status;RDESK id;Lead id;Attempts;Delivered;"
        "Last error;Client name;Phone"
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="sync-history-')


def test_export_writes_one_line_per_event_with_its_audit_columns(client, operator, history):
    rows = rows_of(export(client, operator, "?status__exact=failed"))

    assert rows == [
        {
            "Event id": str(history["failed"].pk),
            "Received": "01.12.2026 19:27:05",  # Moscow time
            "Flow": "RDESK bookings",
            "Status": "Failed",
            "RDESK id": "88888",
            "Lead id": "23392663",
            "Attempts": "3",
            "Delivered": "",
            "Last error": "ValidationError: Ф*** И*** О*** refused",
            "Client name": "Ф*** И*** О***",
            "Phone": "'+7 *** *** 31 23",
        }
    ]


def test_export_follows_the_lists_filters_and_search(client, operator, history, mc_flow):
    by_flow = rows_of(export(client, operator, f"?flow__id__exact={mc_flow.pk}"))
    by_search = rows_of(export(client, operator, "?q=23392663"))

    assert [row["Event id"] for row in by_flow] == [str(history["delivered"].pk)]
    assert [row["Event id"] for row in by_search] == [str(history["failed"].pk)]


def test_masked_export_shows_no_personal_value_and_records_no_access(client, operator, history):
    text = body_of(export(client, operator))

    assert leaked_in(text, history["failed"].payload) == set()
    assert leaked_in(text, history["delivered"].payload) == set()
    assert not PersonalDataAccess.objects.exists()


def test_unmasked_export_shows_names_and_phones_and_records_each_event(
    client, pd_operator, history
):
    rows = rows_of(export(client, pd_operator))

    by_id = {row["Event id"]: row for row in rows}
    failed = by_id[str(history["failed"].pk)]
    assert (failed["Client name"], failed["Phone"]) == ("Фамилия1 Имя1 Отчество1", "79123123123")
    assert failed["Last error"] == "ValidationError: Фамилия2 Имя2 Отчество2 refused"
    accesses = PersonalDataAccess.objects.filter(user=pd_operator, kind="export")
    assert sorted(accesses.values_list("event_id", flat=True)) == sorted(
        event.pk for event in history.values()
    )


def test_auditor_gets_403_for_the_export(client, auditor, history):
    response = export(client, auditor)

    assert response.status_code == 403
    assert not PersonalDataAccess.objects.exists()


def test_a_cell_that_excel_would_run_as_a_formula_is_written_as_text(
    client, pd_operator, booked_flow
):
    InboundEventFactory(flow=booked_flow, payload={"name": '=HYPERLINK("http://x")'})

    [row] = rows_of(export(client, pd_operator))

    assert row["Client name"] == '\'=HYPERLINK("http://x")'


def test_a_rejected_body_without_a_payload_is_exported_too(client, operator, booked_flow):
    event = InboundEventFactory(
        flow=booked_flow, payload=None, status=EventStatus.REJECTED, last_error="Body is empty."
    )

    [row] = rows_of(export(client, operator))

    assert (row["Event id"], row["Status"], row["Client name"]) == (str(event.pk), "Rejected", "")


def test_export_of_many_events_records_every_one(client, pd_operator, booked_flow, monkeypatch):
    from integrations.sync import exports

    monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
    InboundEventFactory.create_batch(5, flow=booked_flow, payload=load_item("rdesk-booked.json"))

    rows = rows_of(export(client, pd_operator))

    assert len(rows) == 5
    assert PersonalDataAccess.objects.filter(kind="export").count() == 5
    assert set(PersonalDataAccess.objects.values_list("event_id", flat=True)) == set(
        InboundEvent.objects.values_list("pk", flat=True)
    )
