"""End to end for the medical-centre flow and mock lead id mode.

A real PostgreSQL, Redis broker, Celery worker process and the emulator: RDESK's
samples are posted to the intake and the worker delivers them to the emulator.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from integrations.sync.models import EventStatus, Flow, LeadAlias
from tests.workers import field_values, wait_for_status

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MOSCOW = ZoneInfo("Europe/Moscow")
MC_LEAD = 11642589
BOOKED_LEAD = 23392663
BOOKINGS_PIPELINE, NEW_BOOKING = 10156066, 80453094


@pytest.fixture
def mock_booked_flow(emulator_account) -> Flow:
    flow = Flow.objects.get(kind="booked")
    flow.account = emulator_account
    flow.mock_lead_id = True
    flow.mock_pipeline_id, flow.mock_status_id = BOOKINGS_PIPELINE, NEW_BOOKING
    flow.save()
    return flow


def test_mc_sample_reaches_the_lead_with_every_mapped_value(
    client, mc_emulator_flow, emulator, worker, mc_body
):
    response = client.post("/zdrav/mc", mc_body, content_type="application/json")

    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    event = wait_for_status(EventStatus.DELIVERED)
    lead = emulator.state.lead(MC_LEAD)
    # Treatment 850 paid + packet 4000 paid + complex 8000 paid; the 1000 lab is cancelled.
    assert lead["price"] == 12850
    assert field_values(lead) == {
        1287599: [int(datetime(2020, 9, 14, 12, 18, tzinfo=UTC).timestamp())],
        1305167: ["12850"],
        1305111: ["185588"],
        1305201: [int(datetime(1950, 12, 1, tzinfo=MOSCOW).timestamp())],
    }
    attempt = event.delivery_attempts.get()
    assert (attempt.request_method, attempt.response_status) == ("PATCH", 200)
    assert attempt.request_url.endswith(f"/api/v4/leads/{MC_LEAD}")


def test_mock_mode_creates_id_n_and_delivers_the_booking_to_it(
    client, mock_booked_flow, emulator, worker, booked_body
):
    response = client.post("/zdrav/booked", booked_body, content_type="application/json")

    assert response.status_code == 200
    event = wait_for_status(EventStatus.DELIVERED)
    (lead,) = [lead for lead in emulator.state.leads.values() if lead["name"] == "ID_23392663"]
    assert (lead["pipeline_id"], lead["status_id"]) == (BOOKINGS_PIPELINE, NEW_BOOKING)
    assert lead["price"] == 153887
    assert emulator.state.lead(BOOKED_LEAD)["price"] == 0  # the real lead is left alone
    assert LeadAlias.objects.get(rdesk_lead_id=BOOKED_LEAD).amocrm_lead_id == lead["id"]
    calls = [(a.request_method, a.response_status) for a in event.delivery_attempts.order_by("id")]
    assert calls == [("GET", 204), ("POST", 200), ("PATCH", 200)]
