"""A batch call in the audit trail: linked from each event it carried, its answer whole
only for people allowed to see personal data."""

import json

import pytest
from django.urls import reverse

from integrations.sync.models import BatchCall
from tests.conftest import fixture_json
from tests.factories import DeliveryAttemptFactory, InboundEventFactory

GUEST = "Фамилия1 Имя1 Отчество2"


@pytest.fixture
def batch(booked_flow):
    """Two bookings sent in one PATCH; AmoCRM's answer names a guest."""
    payload = fixture_json("rdesk/rdesk-booked.json")[0]
    call = BatchCall.objects.create(
        account=booked_flow.account,
        request_method="PATCH",
        request_url=f"{booked_flow.account.api_base_url}/api/v4/leads",
        response_status=200,
        response_body=json.dumps({"echo": GUEST}, ensure_ascii=False),
        item_count=2,
    )
    events = [InboundEventFactory(flow=booked_flow, payload=payload) for _ in range(2)]
    for event in events:
        DeliveryAttemptFactory(
            event=event,
            batch_call=call,
            request_url=call.request_url,
            request_body=[{"id": 23392663, "price": 1, "request_id": str(event.pk)}],
        )
    return call, events


def test_the_event_page_links_the_batch_call_that_carried_it(batch, auditor_client):
    call, (event, _) = batch

    html = auditor_client.get(
        reverse("admin:sync_inboundevent_change", args=[event.pk])
    ).content.decode()

    assert reverse("admin:sync_batchcall_change", args=[call.pk]) in html
    assert "carrying 2 events" in html


def test_the_batch_call_page_lists_its_events_and_hides_the_answer_from_an_auditor(
    batch, auditor_client
):
    call, events = batch

    html = auditor_client.get(reverse("admin:sync_batchcall_change", args=[call.pk])).content
    html = html.decode()

    for event in events:
        assert reverse("admin:sync_inboundevent_change", args=[event.pk]) in html
    assert GUEST not in html
    assert "Hidden: an answer about several guests" in html


def test_a_personal_data_auditor_reads_the_whole_answer(batch, client, pd_auditor):
    call, _ = batch
    client.force_login(pd_auditor)

    html = client.get(reverse("admin:sync_batchcall_change", args=[call.pk])).content.decode()

    assert GUEST in html
