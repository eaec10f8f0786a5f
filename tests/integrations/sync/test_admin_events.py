"""The audit trail as each role sees it: masked personal data, the event page, replay, search."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from integrations.sync.models import EventStatus, Flow, InboundEvent, PersonalDataAccess, Replay
from integrations.sync.roles import OPERATORS, PERSONAL_DATA
from integrations.sync.updates import lead_update_prepare
from tests.conftest import fixture_bytes
from tests.factories import (
    DeliveryAttemptFactory,
    FlowFactory,
    InboundEventFactory,
    LeadAliasFactory,
    UserFactory,
)
from tests.integrations.rdesk.payloads import load_item
from tests.integrations.sync.test_masking import leaked_in

CHANGELIST = "admin:sync_inboundevent_changelist"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def recorded_event(flow: Flow, fixture: str, **fields) -> InboundEvent:
    """An event stored as intake stores a recorded sample, with a failed attempt.

    Personal values travel on into the request sent, AmoCRM's answer (with JSON escapes)
    and the error texts, as they would in life.
    """
    item = load_item(fixture)
    guest = (item.get("extData") or {}).get("guests", [{}])[0].get("fio") or item["name"]
    stored = {
        "flow": flow,
        "payload": item,
        "raw_body": fixture_bytes(f"rdesk/{fixture}"),
        "rdesk_id": str(item["id"]),
        "lead_id": str(item["lead_id"]),
        "status": EventStatus.FAILED,
        "attempts": 1,
        "last_error": f"ValidationError: {item['name']}, {item['phone']}: refused",
    }
    event = InboundEventFactory(**{**stored, **fields})
    update = lead_update_prepare(flow=flow, payload=item).update
    DeliveryAttemptFactory(
        event=event,
        started_at=event.received_at + timedelta(seconds=1),
        request_body=[{"id": int(item["lead_id"]), **update}],
        response_status=400,
        response_body=json.dumps({"title": "Bad Request", "detail": f"{guest} is too long"}),
        error_class="ValidationError",
        error_detail=f"custom_fields_values.0: {guest} / {item['phone']}",
    )
    return event


@pytest.fixture
def booking_event(booked_flow) -> InboundEvent:
    return recorded_event(booked_flow, "rdesk-booked.json")


@pytest.fixture
def mc_event(mc_flow) -> InboundEvent:
    return recorded_event(mc_flow, "rdesk-mc.json")


@pytest.fixture
def delivered_event(booked_flow) -> InboundEvent:
    return InboundEventFactory(
        flow=booked_flow, status=EventStatus.DELIVERED, rdesk_id="1", lead_id="1", attempts=1
    )


@pytest.fixture
def pd_operator(db):
    return UserFactory(username="pd-operator", role=[OPERATORS, PERSONAL_DATA])


def login(client, user):
    client.force_login(user)
    return client


def event_page(event) -> str:
    return reverse("admin:sync_inboundevent_change", args=[event.pk])


def attempt_page(event) -> str:
    return reverse("admin:sync_deliveryattempt_change", args=[event.delivery_attempts.get().pk])


def listed(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


def html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- masking -----------------------------------------------------------------------------


@pytest.mark.parametrize("event_fixture", ["booking_event", "mc_event"])
@pytest.mark.parametrize("page", [event_page, attempt_page], ids=["event", "attempt"])
def test_auditor_sees_no_personal_value_on_the_event_and_attempt_pages(
    client, auditor, request, event_fixture, page
):
    event = request.getfixturevalue(event_fixture)

    content = html(login(client, auditor).get(page(event)))

    assert leaked_in(content, event.payload) == set()
    assert "Personal data is masked: you do not have the right to see it." in content


def test_auditor_sees_no_personal_value_in_the_events_list(
    client, auditor, booking_event, mc_event
):
    content = html(login(client, auditor).get(reverse(CHANGELIST)))

    assert leaked_in(content, booking_event.payload) == set()
    assert leaked_in(content, mc_event.payload) == set()
    assert "Ф*** И*** О***" in content
    assert "+7 *** *** 31 23" in content
    assert "Personal data is masked: you do not have the right to see it." in content


def test_auditor_sees_no_personal_value_in_the_attempts_list(client, auditor, booking_event):
    content = html(login(client, auditor).get(reverse("admin:sync_deliveryattempt_changelist")))

    assert leaked_in(content, booking_event.payload) == set()


def test_masked_event_page_shows_the_masked_forms(client, auditor, booking_event):
    content = html(login(client, auditor).get(event_page(booking_event)))

    assert "Ф*** И*** О***" in content
    assert "+7 *** *** 31 23" in content
    assert "m***@e***.ru" in content


def test_auditor_opening_an_event_records_no_personal_data_access(client, auditor, booking_event):
    login(client, auditor).get(event_page(booking_event))

    assert not PersonalDataAccess.objects.exists()


def test_pd_auditor_sees_personal_data_and_each_view_is_recorded(client, pd_auditor, booking_event):
    login(client, pd_auditor)

    first = html(client.get(event_page(booking_event)))
    client.get(event_page(booking_event))

    assert "Фамилия1 Имя1 Отчество1" in first
    assert "Фамилия2 Имя2 Отчество2" in first
    assert "79123123123" in first
    assert "Personal data is masked" not in first
    accesses = PersonalDataAccess.objects.filter(event=booking_event, user=pd_auditor)
    assert list(accesses.values_list("kind", flat=True)) == ["view", "view"]


def test_pd_auditor_sees_an_attempt_unmasked_and_the_view_is_recorded(
    client, pd_auditor, booking_event
):
    content = html(login(client, pd_auditor).get(attempt_page(booking_event)))

    assert "Фамилия1 Имя1 Отчество2" in content
    access = PersonalDataAccess.objects.get()
    assert (access.event, access.user, access.kind) == (booking_event, pd_auditor, "view")


def test_pd_auditor_sees_names_and_phones_in_the_list(client, pd_auditor, booking_event):
    content = html(login(client, pd_auditor).get(reverse(CHANGELIST)))

    assert "Фамилия1 Имя1 Отчество1" in content
    assert "79123123123" in content


# --- the event page ----------------------------------------------------------------------


def test_event_page_shows_payload_named_values_and_history_side_by_side(
    client, auditor, booking_event
):
    response = login(client, auditor).get(event_page(booking_event))

    content = html(response)
    assert 'class="sync-grid"' in content
    rows = {name: value for name, _, value in response.context["named_values"].rows}
    assert rows["zdrav_id"] == "88888"
    assert rows["name"] == "Ф*** И*** О***"
    assert "Ф*** И*** О***" in rows["guests_text"]
    assert "Стандарт без балкона" in rows["guests_text"]
    assert "Check-in date" in content  # the value's label
    [attempt] = response.context["history"]
    assert (attempt["method"], attempt["number"]) == ("PATCH", 1)
    assert '"title": "Bad Request"' in attempt["response"]  # pretty, escapes undone


def test_event_page_shows_status_times_ids_and_the_full_last_error(client, auditor, booking_event):
    content = html(login(client, auditor).get(event_page(booking_event)))

    assert 'sync-badge sync-badge--failed">Failed<' in content
    assert "ValidationError: Ф*** И*** О***, +7 *** *** 31 23: refused" in content
    assert "88888" in content
    assert "23392663" in content


def test_event_page_says_why_a_payload_makes_no_update(client, auditor, booked_flow):
    item = load_item("rdesk-booked-invalid.json")
    event = InboundEventFactory(flow=booked_flow, payload=item, status=EventStatus.FAILED)

    response = login(client, auditor).get(event_page(event))

    assert response.context["named_values"].problem.startswith("Invalid payload:")
    assert "Invalid payload:" in html(response)


def test_event_page_of_a_flow_without_an_account_says_so(client, auditor):
    flow = FlowFactory(account=None)
    event = InboundEventFactory(flow=flow, payload=load_item("rdesk-booked.json"))

    content = html(login(client, auditor).get(event_page(event)))

    assert "This flow has no AmoCRM account, so its events produce no values." in content


def test_history_interleaves_replays_with_attempts_in_time_order(
    client, auditor, operator, booking_event
):
    first = booking_event.delivery_attempts.get()
    Replay.objects.create(
        event=booking_event,
        requested_at=first.started_at + timedelta(minutes=5),
        requested_by=operator,
        source=Replay.Source.EVENT_PAGE,
        previous_status=EventStatus.FAILED,
        attempts_before=1,
    )
    DeliveryAttemptFactory(event=booking_event, started_at=first.started_at + timedelta(minutes=6))

    response = login(client, auditor).get(event_page(booking_event))

    history = response.context["history"]
    assert [entry["kind"] for entry in history] == ["attempt", "replay", "attempt"]
    assert [entry.get("number") for entry in history] == [1, None, 2]
    assert history[1]["by"] == "operator"
    assert "Event page" in html(response)


def test_event_page_links_the_lead_in_amocrm(client, auditor, booking_event):
    content = html(login(client, auditor).get(event_page(booking_event)))

    assert 'href="https://clinic.amocrm.ru/leads/detail/23392663"' in content


def test_event_page_in_mock_lead_id_mode_links_the_aliased_lead(
    client, auditor, booked_flow, booking_event
):
    booked_flow.mock_lead_id = True
    booked_flow.save()
    LeadAliasFactory(account=booked_flow.account, rdesk_lead_id=23392663, amocrm_lead_id=5550001)

    content = html(login(client, auditor).get(event_page(booking_event)))

    assert 'href="https://clinic.amocrm.ru/leads/detail/5550001"' in content


def test_event_page_in_mock_lead_id_mode_without_an_alias_links_nothing(
    client, auditor, booked_flow, booking_event
):
    booked_flow.mock_lead_id = True
    booked_flow.save()

    content = html(login(client, auditor).get(event_page(booking_event)))

    assert "/leads/detail/" not in content
    assert "no AmoCRM lead yet" in content


def test_event_page_makes_as_many_queries_however_long_its_history(
    client, auditor, operator, booked_flow
):
    short = recorded_event(booked_flow, "rdesk-booked.json")
    long = recorded_event(booked_flow, "rdesk-booked.json")
    for _ in range(5):
        DeliveryAttemptFactory(event=long)
        Replay.objects.create(
            event=long, requested_by=operator, source="event_page", previous_status="failed"
        )
    login(client, auditor).get(event_page(short))  # warm the session and permission caches

    with CaptureQueriesContext(connection) as few:
        client.get(event_page(short))
    with CaptureQueriesContext(connection) as many:
        client.get(event_page(long))

    assert len(many) == len(few)


# --- replay from the event page ----------------------------------------------------------


def replay_url(event) -> str:
    return reverse("admin:sync_inboundevent_replay", args=[event.pk])


def test_event_page_offers_replay_only_to_those_allowed(client, auditor, operator, booking_event):
    seen_by_auditor = html(login(client, auditor).get(event_page(booking_event)))
    seen_by_operator = html(login(client, operator).get(event_page(booking_event)))

    assert replay_url(booking_event) not in seen_by_auditor
    assert replay_url(booking_event) in seen_by_operator


def preview_url(event) -> str:
    try:
        return reverse("admin:sync_inboundevent_preview", args=[event.pk])
    except NoReverseMatch:
        pytest.skip("the event preview page is not part of this URLconf")


def test_event_page_links_the_preview_for_those_allowed(client, auditor, booking_event):
    content = html(login(client, auditor).get(event_page(booking_event)))

    assert f'href="{preview_url(booking_event)}"' in content


def test_event_page_hides_the_preview_from_those_not_allowed(client, booking_event):
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_inboundevent"))

    content = html(login(client, viewer).get(event_page(booking_event)))

    assert f'href="{preview_url(booking_event)}"' not in content


def test_auditor_posting_replay_gets_403_and_nothing_changes(
    client, auditor, booking_event, enqueued
):
    response = login(client, auditor).post(replay_url(booking_event))

    assert response.status_code == 403
    booking_event.refresh_from_db()
    assert booking_event.status == EventStatus.FAILED
    assert not Replay.objects.exists()


def test_operator_replays_an_event_from_its_page(client, operator, booking_event, enqueued):
    response = login(client, operator).post(replay_url(booking_event), follow=True)

    assert "The event was queued for delivery again." in html(response)
    booking_event.refresh_from_db()
    assert booking_event.status == EventStatus.QUEUED
    assert booking_event.attempts == 1  # the counter is never reset
    assert booking_event.delivery_attempts.count() == 1
    replay = Replay.objects.get(event=booking_event)
    assert (replay.requested_by, replay.source, replay.previous_status) == (
        operator,
        Replay.Source.EVENT_PAGE,
        EventStatus.FAILED,
    )


def test_replaying_a_pending_event_leaves_it_alone_and_says_so(
    client, operator, booked_flow, enqueued
):
    event = InboundEventFactory(flow=booked_flow, status=EventStatus.QUEUED)

    response = login(client, operator).post(replay_url(event), follow=True)

    assert "The event was not sent again: it is Queued." in html(response)
    assert not Replay.objects.exists()


# --- the list ----------------------------------------------------------------------------


def test_list_shows_badges_times_attempts_and_the_whole_error(client, auditor, booked_flow):
    error = "AmoCRM said: " + " ".join(f"problem-{n}" for n in range(60))
    InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, attempts=7, last_error=error)

    content = html(login(client, auditor).get(reverse(CHANGELIST)))

    assert 'sync-badge sync-badge--failed">Failed<' in content
    assert f'<div class="sync-error">{error}</div>' in content
    assert '<td class="field-attempts">7</td>' in content
    assert "field-received_at" in content
    assert "field-delivered_at" in content


def test_list_links_each_lead_to_amocrm(client, auditor, booking_event):
    content = html(login(client, auditor).get(reverse(CHANGELIST)))

    assert 'href="https://clinic.amocrm.ru/leads/detail/23392663"' in content


def list_queries(client, count: int, flow) -> int:
    """Queries for the list holding ``count`` events of a mock-mode flow, each aliased."""
    InboundEvent.objects.all().delete()
    for number in range(1000 * count, 1000 * count + count):
        recorded_event(flow, "rdesk-booked.json", lead_id=str(number))
        LeadAliasFactory(account=flow.account, rdesk_lead_id=number)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(CHANGELIST)).status_code == 200
    return len(queries)


@pytest.mark.parametrize("user_fixture", ["auditor", "pd_auditor"])
def test_list_makes_the_same_queries_for_few_and_many_events(
    client, request, booked_flow, user_fixture
):
    booked_flow.mock_lead_id = True
    booked_flow.save()
    login(client, request.getfixturevalue(user_fixture))
    client.get(reverse(CHANGELIST))  # warm the session and permission caches

    assert list_queries(client, 2, booked_flow) == list_queries(client, 12, booked_flow)


def test_list_offers_export_and_filtered_replay_only_to_those_allowed(
    client, auditor, operator, booking_event, delivered_event
):
    seen_by_auditor = html(login(client, auditor).get(reverse(CHANGELIST)))
    seen_by_operator = html(
        login(client, operator).get(reverse(CHANGELIST), {"status__exact": "failed"})
    )

    assert "Export CSV" not in seen_by_auditor
    assert "Replay all matching this filter" not in seen_by_auditor
    assert "Export CSV" in seen_by_operator
    assert "Replay all matching this filter (1)" in seen_by_operator


# --- replay from the list ----------------------------------------------------------------


@pytest.fixture
def three_failed_and_a_delivered(booked_flow, mc_flow, delivered_event):
    failed = [
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, attempts=3),
        InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, attempts=2),
        InboundEventFactory(flow=mc_flow, status=EventStatus.FAILED, attempts=5),
    ]
    return failed, delivered_event


def test_replay_action_with_select_across_replays_the_whole_filtered_list(
    client, operator, three_failed_and_a_delivered, enqueued
):
    failed, _ = three_failed_and_a_delivered

    login(client, operator).post(
        reverse(CHANGELIST) + "?status__exact=failed",
        {
            "action": "replay",
            "select_across": "1",
            "index": "0",
            ACTION_CHECKBOX_NAME: [failed[0].pk],
        },
    )

    replays = Replay.objects.all()
    assert {replay.event_id for replay in replays} == {event.pk for event in failed}
    assert {replay.source for replay in replays} == {Replay.Source.ADMIN_ACTION}
    assert dict(InboundEvent.objects.values_list("pk", "attempts"))[failed[2].pk] == 5


def test_auditor_cannot_run_the_replay_action(
    client, auditor, three_failed_and_a_delivered, enqueued
):
    failed, _ = three_failed_and_a_delivered

    login(client, auditor).post(
        reverse(CHANGELIST), {"action": "replay", ACTION_CHECKBOX_NAME: [failed[0].pk]}
    )

    assert not Replay.objects.exists()


def replay_filtered_url(query: str = "") -> str:
    return reverse("admin:sync_inboundevent_replay_filtered") + query


def test_filtered_replay_asks_first_showing_the_count(
    client, operator, three_failed_and_a_delivered, enqueued
):
    response = login(client, operator).post(replay_filtered_url("?status__exact=failed"))

    content = html(response)
    assert "3 events match this filter." in content
    assert "<li>Status: Failed</li>" in content
    assert 'name="confirm" value="yes"' in content
    assert not Replay.objects.exists()


def test_filtered_replay_replays_exactly_the_filtered_events(
    client, operator, booked_flow, three_failed_and_a_delivered, enqueued
):
    failed, _ = three_failed_and_a_delivered
    query = f"?status__exact=failed&flow__id__exact={booked_flow.pk}"

    response = login(client, operator).post(replay_filtered_url(query), {"confirm": "yes"})

    assert response.status_code == 302
    path, _, back_query = response.url.partition("?")
    assert (path, QueryDict(back_query)) == (reverse(CHANGELIST), QueryDict(query[1:]))
    replays = Replay.objects.all()
    assert {replay.event_id for replay in replays} == {failed[0].pk, failed[1].pk}
    assert {(replay.source, replay.requested_by) for replay in replays} == {
        (Replay.Source.ADMIN_ACTION, operator)
    }


def test_filtered_replay_follows_the_search_too(
    client, operator, booked_flow, three_failed_and_a_delivered, enqueued
):
    target = InboundEventFactory(flow=booked_flow, status=EventStatus.FAILED, lead_id="4242")

    login(client, operator).post(replay_filtered_url("?q=4242"), {"confirm": "yes"})

    assert list(Replay.objects.values_list("event_id", flat=True)) == [target.pk]


def test_auditor_posting_filtered_replay_gets_403(
    client, auditor, three_failed_and_a_delivered, enqueued
):
    response = login(client, auditor).post(
        replay_filtered_url("?status__exact=failed"), {"confirm": "yes"}
    )

    assert response.status_code == 403
    assert not Replay.objects.exists()


# --- search by name and phone ------------------------------------------------------------


@pytest.fixture
def searchable(booking_event, mc_event, delivered_event):
    return {"booking": booking_event, "mc": mc_event}


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("Фамилия2 Имя2", "booking"),  # a guest's fio inside extData.guests
        ("Фамилия1 Имя1 Отчество1", "booking"),  # the client
        ("+7 912 312-31-23", "booking"),
        ("8 (912) 312 31 23", "booking"),
        ("Михайлов", "mc"),
        ("+7 123 123-45-67", "mc"),
    ],
)
def test_pd_user_finds_events_by_name_or_phone(client, pd_auditor, searchable, query, key):
    response = login(client, pd_auditor).get(reverse(CHANGELIST), {"q": query})

    assert listed(response) == {searchable[key].pk}


@pytest.mark.parametrize("query", ["Фамилия2 Имя2", "+7 912 312-31-23", "Михайлов"])
def test_search_by_name_or_phone_finds_nothing_for_an_auditor(client, auditor, searchable, query):
    response = login(client, auditor).get(reverse(CHANGELIST), {"q": query})

    assert listed(response) == set()


def test_name_search_looks_at_names_not_at_every_text(client, pd_auditor, searchable):
    response = login(client, pd_auditor).get(reverse(CHANGELIST), {"q": "Стандарт"})

    assert listed(response) == set()


def test_ids_are_still_found_by_a_pd_user(client, pd_auditor, searchable):
    response = login(client, pd_auditor).get(reverse(CHANGELIST), {"q": "88888"})

    assert listed(response) == {searchable["booking"].pk}


def test_events_are_found_by_body_hash_in_either_case(client, pd_auditor, booked_flow):
    event = InboundEventFactory(flow=booked_flow, body_hash="ab" * 32)

    response = login(client, pd_auditor).get(reverse(CHANGELIST), {"q": "AB" * 32})

    assert listed(response) == {event.pk}


@pytest.mark.postgres
def test_name_search_ignores_letter_case(client, pd_auditor, searchable):
    response = login(client, pd_auditor).get(reverse(CHANGELIST), {"q": "фамилия2 имя2"})

    assert listed(response) == {searchable["booking"].pk}


def test_search_help_says_who_may_search_by_personal_data(client, auditor, pd_auditor, db):
    seen_by_auditor = html(login(client, auditor).get(reverse(CHANGELIST)))
    seen_by_pd_auditor = html(login(client, pd_auditor).get(reverse(CHANGELIST)))

    assert "Searching by name or phone needs the right to see personal data." in seen_by_auditor
    assert "or by a guest&#x27;s or the client&#x27;s name or phone" in seen_by_pd_auditor
