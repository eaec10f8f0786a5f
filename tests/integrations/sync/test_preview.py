"""Preview: what a delivery would send, shown without sending anything."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from integrations.sync.delivery import event_deliver
from integrations.sync.models import (
    EventStatus,
    FieldMapping,
    InboundEvent,
    PersonalDataAccess,
)
from integrations.sync.preview import Change, Step, preview_build
from tests.conftest import fixture_bytes
from tests.factories import (
    CustomFieldFactory,
    DeliveryAttemptFactory,
    InboundEventFactory,
    LeadAliasFactory,
    UserFactory,
)
from tests.integrations.rdesk.payloads import load_item

API = "https://clinic.amocrm.ru"
LEAD_URL = f"{API}/api/v4/leads/23392663"
LEADS_URL = f"{API}/api/v4/leads"
# Personal data in tests/fixtures/rdesk/rdesk-booked.json: none may show masked.
PERSONAL = [
    "Фамилия1 Имя1 Отчество1",
    "Фамилия1 Имя1 Отчество2",
    "Фамилия2 Имя2 Отчество2",
    "79123123123",
    "mail@example.ru",
    "Лечение суставов и позвоночника",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def booking_event(flow, **fields) -> InboundEvent:
    item = load_item("rdesk-booked.json")
    defaults = {
        "status": EventStatus.QUEUED,
        "rdesk_id": str(item["id"]),
        "lead_id": str(item["lead_id"]),
        "raw_body": fixture_bytes("rdesk/rdesk-booked.json"),
    }
    return InboundEventFactory(flow=flow, payload=item, **{**defaults, **fields})


def delivered_event(flow, amocrm_http) -> InboundEvent:
    """The sample booking, delivered for real through ``responses``."""
    amocrm_http.patch(LEAD_URL, json={"id": 23392663})
    event = booking_event(flow)
    assert event_deliver(event_id=event.pk) == EventStatus.DELIVERED
    return event


def flow_preview_url(flow) -> str:
    return reverse("admin:sync_flow_preview", args=[flow.pk])


def event_preview_url(event) -> str:
    return reverse("admin:sync_inboundevent_preview", args=[event.pk])


def paste(client, flow, body: bytes | str):
    text = body.decode() if isinstance(body, bytes) else body
    return client.post(flow_preview_url(flow), {"payload": text})


# --- the service ----------------------------------------------------------------------


def test_preview_body_is_exactly_what_a_delivery_sends(booked_flow, amocrm_http):
    event = booking_event(booked_flow)

    preview = preview_build(flow=booked_flow, payload=event.payload, event=event)
    assert len(amocrm_http.calls) == 0
    amocrm_http.patch(LEAD_URL, json={"id": 23392663})
    event_deliver(event_id=event.pk)

    (call,) = amocrm_http.calls
    assert (preview.update.method, preview.update.url) == (call.request.method, call.request.url)
    assert preview.update.body == json.loads(call.request.body)


def test_preview_calls_nothing_even_in_mock_mode_without_a_catalogue(booked_flow, amocrm_http):
    # amocrm_http has nothing registered: any HTTP call would raise.
    booked_flow.mock_lead_id = True
    booked_flow.save()

    preview = preview_build(flow=booked_flow, payload=load_item("rdesk-booked.json"))

    assert len(amocrm_http.calls) == 0
    assert preview.target.stage_from_amocrm
    assert [r.step for r in preview.requests] == [Step.SEARCH, Step.CREATE, Step.UPDATE]


def test_mock_mode_preview_updates_the_aliased_lead(booked_flow):
    booked_flow.mock_lead_id = True
    booked_flow.save()
    LeadAliasFactory(account=booked_flow.account, rdesk_lead_id=23392663, amocrm_lead_id=5550001)

    preview = preview_build(flow=booked_flow, payload=load_item("rdesk-booked.json"))

    assert preview.target.alias.amocrm_lead_id == 5550001
    assert [r.step for r in preview.requests] == [Step.UPDATE]
    assert preview.update.url == f"{LEADS_URL}/5550001"


def test_mock_mode_preview_shows_the_search_and_creation_a_delivery_makes(booked_flow, amocrm_http):
    booked_flow.mock_lead_id = True
    booked_flow.mock_pipeline_id, booked_flow.mock_status_id = 3001, 40001
    booked_flow.save()
    event = booking_event(booked_flow)

    preview = preview_build(flow=booked_flow, payload=event.payload, event=event)
    amocrm_http.get(LEADS_URL, status=204)
    amocrm_http.post(LEADS_URL, json={"_embedded": {"leads": [{"id": 777, "request_id": "0"}]}})
    amocrm_http.patch(f"{LEADS_URL}/777", json={"id": 777})
    event_deliver(event_id=event.pk)

    search, create, update = preview.requests
    sent_search, sent_create, sent_update = amocrm_http.calls
    assert search.url == sent_search.request.url
    assert create.body == json.loads(sent_create.request.body)
    assert create.body == [
        {"name": "ID_23392663", "request_id": "23392663", "pipeline_id": 3001, "status_id": 40001}
    ]
    assert update.body == json.loads(sent_update.request.body)


def test_diff_after_a_mapping_change_shows_the_changed_and_added_fields(booked_flow, amocrm_http):
    event = delivered_event(booked_flow, amocrm_http)
    CustomFieldFactory(account=booked_flow.account, field_id=1305167, name="Оплачено")
    CustomFieldFactory(account=booked_flow.account, field_id=1400001, name="Ночей")
    FieldMapping.objects.filter(flow=booked_flow, field_id=1305167).update(source="total")
    FieldMapping.objects.create(
        flow=booked_flow, source="nights", field_id=1400001, field_type="numeric"
    )

    diff = preview_build(flow=booked_flow, payload=event.payload, event=event).diff

    assert [(c.label, c.change, c.old, c.new) for c in diff.changes] == [
        ("Оплачено (1305167)", Change.CHANGED, [{"value": "61361"}], [{"value": "153887"}]),
        ("Ночей (1400001)", Change.ADDED, None, [{"value": "11"}]),
    ]
    assert diff.unchanged == 9  # the price and eight custom fields


def test_diff_lists_a_field_no_longer_sent(booked_flow, amocrm_http):
    event = delivered_event(booked_flow, amocrm_http)
    FieldMapping.objects.filter(flow=booked_flow, field_id=1305107).update(enabled=False)

    diff = preview_build(flow=booked_flow, payload=event.payload, event=event).diff

    assert [(c.key, c.change, c.old) for c in diff.changes] == [
        ("field:1305107", Change.REMOVED, [{"value": "33333"}])
    ]


def test_an_older_event_is_flagged_when_a_newer_one_was_delivered(booked_flow):
    older = booking_event(booked_flow, status=EventStatus.FAILED)
    newer = booking_event(booked_flow, status=EventStatus.DELIVERED)

    preview = preview_build(flow=booked_flow, payload=older.payload, event=older)

    assert preview.newer_event == newer


def test_unmappable_value_is_the_reason_nothing_would_be_sent(booked_flow):
    FieldMapping.objects.filter(flow=booked_flow, field_id=1305107).update(source="name")

    preview = preview_build(flow=booked_flow, payload=load_item("rdesk-booked.json"))

    assert preview.problem.reason.startswith("Cannot map the payload: name -> field 1305107")
    assert preview.requests == []
    assert preview.values["name"] == "Фамилия1 Имя1 Отчество1"


def test_a_payload_filling_no_mapped_field_has_nothing_to_send(booked_flow):
    booked_flow.mappings.update(enabled=False)
    booked_flow.price_source = ""
    booked_flow.save()

    preview = preview_build(flow=booked_flow, payload=load_item("rdesk-booked.json"))

    assert preview.problem.status == EventStatus.SKIPPED
    assert preview.problem.reason.startswith("Nothing to send")


# --- the pages --------------------------------------------------------------------------


def test_pasted_sample_shows_the_request_and_says_nothing_was_sent(
    hub_admin_client, booked_flow, booked_body, amocrm_http
):
    response = paste(hub_admin_client, booked_flow, booked_body)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was sent." in html
    assert f"<strong>PATCH</strong> {LEAD_URL}" in html
    assert "&quot;field_id&quot;: 1305167" in html  # the pretty JSON body
    assert "Amount paid" in html  # the named values table
    assert len(amocrm_http.calls) == 0


def test_pasted_payload_is_neither_stored_nor_recorded(
    pd_auditor, client, booked_flow, booked_body
):
    client.force_login(pd_auditor)

    paste(client, booked_flow, booked_body)

    assert InboundEvent.objects.count() == 0
    assert PersonalDataAccess.objects.count() == 0


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("rdesk/intake/bad-truncated.json", "This is not valid JSON"),
        ("rdesk/intake/bad-scalar.json", "Paste a JSON object"),
        ("rdesk/intake/bad-empty-array.json", "Paste one item: this array holds 0."),
        ("rdesk/intake/bad-array-with-string.json", "Paste one item: this array holds 2."),
    ],
)
def test_pasted_text_that_is_not_one_json_item_is_a_form_error(
    hub_admin_client, booked_flow, fixture, message
):
    response = paste(hub_admin_client, booked_flow, fixture_bytes(fixture))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["preview"] is None


def test_pasted_invalid_payload_shows_the_serializers_errors(hub_admin_client, booked_flow):
    invalid = fixture_bytes("rdesk/rdesk-booked-invalid.json")

    response = paste(hub_admin_client, booked_flow, invalid)

    html = response.content.decode()
    assert "Nothing would be sent" in html
    assert '<code>billData.1.billSum</code></td><td class="preview-text">A valid number' in html
    assert "<code>lead_id</code>" in html


def test_mock_mode_page_names_the_search_and_creation(hub_admin_client, booked_flow, booked_body):
    booked_flow.mock_lead_id = True
    booked_flow.save()

    html = paste(hub_admin_client, booked_flow, booked_body).content.decode()

    assert "search AmoCRM for the lead named ID_23392663" in html
    assert f"<strong>POST</strong> {LEADS_URL}" in html


def test_event_preview_shows_the_diff(hub_admin_client, booked_flow, amocrm_http):
    event = delivered_event(booked_flow, amocrm_http)
    FieldMapping.objects.filter(flow=booked_flow, field_id=1305167).update(source="total")

    html = " ".join(hub_admin_client.get(event_preview_url(event)).content.decode().split())

    assert "Compared with the last update AmoCRM accepted" in html
    assert "9 fields unchanged." in html
    assert '<td class="preview-text">61361</td> <td class="preview-text">153887</td>' in html


def test_event_preview_is_masked_for_an_auditor(auditor_client, booked_flow):
    event = booking_event(booked_flow)

    response = auditor_client.get(event_preview_url(event))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was sent." in html
    assert "Ф*** И*** О***" in html
    assert [value for value in PERSONAL if value in html] == []
    assert PersonalDataAccess.objects.count() == 0


def test_medical_centre_card_preview_masks_the_patient_and_treatments(auditor_client, mc_flow):
    card = load_item("rdesk-mc.json")
    event = InboundEventFactory(flow=mc_flow, payload=card, lead_id=str(card["lead_id"]))

    html = auditor_client.get(event_preview_url(event)).content.decode()

    assert "Nothing was sent." in html
    personal = ["Михайлов Иван Петрович", "81231234567", "1950-12-01", "Консультация кардиолога"]
    assert [value for value in personal if value in html] == []


def test_event_preview_is_unmasked_and_recorded_for_a_personal_data_auditor(
    client, pd_auditor, booked_flow
):
    client.force_login(pd_auditor)
    event = booking_event(booked_flow)

    html = client.get(event_preview_url(event)).content.decode()

    assert "Фамилия1 Имя1 Отчество2" in html
    (access,) = PersonalDataAccess.objects.all()
    assert (access.event, access.user, access.kind) == (event, pd_auditor, "preview")


def test_flow_page_picks_an_event_by_its_rdesk_id(hub_admin_client, booked_flow):
    event = booking_event(booked_flow)

    response = hub_admin_client.get(flow_preview_url(booked_flow), {"rdesk_id": "88888"})

    assert response.status_code == 302
    assert response.url == event_preview_url(event)


def test_flow_page_says_when_it_has_no_such_event(hub_admin_client, booked_flow):
    response = hub_admin_client.get(flow_preview_url(booked_flow), {"event_id": "999999"})

    assert response.status_code == 200
    assert "This flow has no such event." in response.content.decode()


def test_staff_without_the_preview_right_is_refused(client, booked_flow, booked_body):
    client.force_login(UserFactory())
    event = booking_event(booked_flow)

    assert client.get(flow_preview_url(booked_flow)).status_code == 403
    assert paste(client, booked_flow, booked_body).status_code == 403
    assert client.get(event_preview_url(event)).status_code == 403


def test_pasting_without_a_csrf_token_is_refused(hub_admin, booked_flow, booked_body):
    client = Client(enforce_csrf_checks=True)
    client.force_login(hub_admin)

    assert paste(client, booked_flow, booked_body).status_code == 403


def test_flow_page_shows_the_preview_button(auditor_client, booked_flow):
    response = auditor_client.get(reverse("admin:sync_flow_change", args=[booked_flow.pk]))

    assert f'href="{flow_preview_url(booked_flow)}"' in response.content.decode()


def test_event_already_delivered_without_accepted_update_has_nothing_to_compare(
    hub_admin_client, booked_flow
):
    event = booking_event(booked_flow, status=EventStatus.FAILED)
    DeliveryAttemptFactory(event=event, response_status=422, request_body={"price": 1})

    html = hub_admin_client.get(event_preview_url(event)).content.decode()

    assert "AmoCRM has accepted no update for this event yet" in html
