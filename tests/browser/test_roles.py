"""What each role sees and may do in the browser, and what the server refuses whatever
the page shows: auditors read masked data and change nothing, operators replay."""

import pytest
from playwright.sync_api import expect

from integrations.amocrm.models import Account
from integrations.sync.models import (
    DeliveryAttempt,
    EventStatus,
    FieldMapping,
    Flow,
    InboundEvent,
    PersonalDataAccess,
    Replay,
)
from tests.browser.pages import direct_get, direct_post, refused

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# The sample booking's guest, client and treatment, as RDESK sent them.
PERSONAL_STRINGS = ["Фамилия1", "79123123123", "mail@example.ru", "Лечение суставов"]
MASKED_NAME = "Ф***"


def event_url(event) -> str:
    return f"/admin/sync/inboundevent/{event.pk}/change/"


def replay_button(page, event):
    return page.locator(f"form[action='/admin/sync/inboundevent/{event.pk}/replay/'] button")


def assert_masked(page) -> None:
    content = page.content()
    shown = [text for text in PERSONAL_STRINGS if text in content]
    assert not shown, f"personal data on {page.url}: {shown}"
    assert MASKED_NAME in content


def replay_action_post(page, base: str, event):
    """The list's ``replay`` action for one event, as the list's form would post it."""
    return direct_post(
        page,
        base,
        "/admin/sync/inboundevent/",
        {"action": "replay", "_selected_action": str(event.pk), "index": "0"},
    )


def flow_state(flow: Flow) -> tuple:
    flow.refresh_from_db()
    mappings = list(FieldMapping.objects.filter(flow=flow).values_list("source", "field_id"))
    return flow.name, flow.enabled, flow.account_id, flow.price_source, mappings


def test_auditor_sees_masked_data_and_every_change_is_refused(
    browse, auditor, delivered_event, booked_flow, live_server, screens
):
    base = live_server.url
    account = booked_flow.account
    flow_before = flow_state(booked_flow)
    page = browse(auditor)

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#sync-dashboard svg").first).to_be_visible()
    dashboard = screens.shot(page, "dashboard")

    # The list: masked, with neither export nor replay on offer.
    page.goto(f"{base}/admin/sync/inboundevent/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert_masked(page)
    expect(page.locator("a.sync-export")).to_have_count(0)
    replay_filtered = page.locator("form[action^='/admin/sync/inboundevent/replay-filtered/']")
    expect(replay_filtered).to_have_count(0)
    expect(page.locator("select[name=action] option[value=replay]")).to_have_count(0)

    # The event page: payload, named values and the attempt, all masked; no Replay.
    page.goto(f"{base}{event_url(delivered_event)}")
    expect(page.locator(".sync-notice--masked")).to_contain_text("Персональные данные скрыты")
    expect(page.locator(".sync-timeline__attempt")).to_have_count(1)
    assert_masked(page)
    expect(replay_button(page, delivered_event)).to_have_count(0)
    event_page = screens.shot(page, "event")
    page.goto(f"{base}/admin/sync/inboundevent/{delivered_event.pk}/preview/")
    expect(page.locator("#nothing-sent")).to_be_visible()
    assert_masked(page)

    # The accounts list has no connection or catalogue action; the account page offers
    # neither Connect nor Test connection.
    page.goto(f"{base}/admin/amocrm/account/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("select[name=action] option[value=test_connection]")).to_have_count(0)
    expect(page.locator("select[name=action] option[value=refresh_catalogue]")).to_have_count(0)
    page.goto(f"{base}/admin/amocrm/account/{account.pk}/change/")
    expect(page.locator("#account_form")).to_be_visible()
    expect(page.locator("a[href^='/amocrm/oauth/start/']")).to_have_count(0)
    expect(page.locator("form[action$='/test-connection/']")).to_have_count(0)

    # The flow page is read-only: no save, no mapping to add or edit.
    page.goto(f"{base}/admin/sync/flow/{booked_flow.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text(booked_flow.name)
    expect(page.locator("div.submit-row input[type=submit]")).to_have_count(0)
    # Django's inline script keeps the "add another" row in the page, hidden.
    expect(page.locator(".add-row a:visible")).to_have_count(0)
    expect(page.locator("select[name^='mappings-']")).to_have_count(0)
    flow_page = screens.shot(page, "flow")

    # Asked directly, with the auditor's session and a valid CSRF token, the server refuses.
    answers = {
        "replay the event": direct_post(
            page, base, f"/admin/sync/inboundevent/{delivered_event.pk}/replay/"
        ),
        "export CSV": direct_get(page, base, "/admin/sync/inboundevent/export/"),
        "change the flow": direct_post(
            page,
            base,
            f"/admin/sync/flow/{booked_flow.pk}/change/",
            {"name": "changed", "kind": "booked", "endpoint_path": "/zdrav/changed", "enabled": ""},
        ),
        "connect the account": direct_get(page, base, f"/amocrm/oauth/start/{account.pk}/"),
        "test the connection": direct_post(
            page, base, f"/admin/amocrm/account/{account.pk}/test-connection/"
        ),
    }
    statuses = {what: answer.status for what, answer in answers.items()}
    assert all(refused(answer) for answer in answers.values()), statuses
    # The list's replay action, posted by hand, does nothing (its 403 is checked below).
    replay_action_post(page, base, delivered_event)

    delivered_event.refresh_from_db()
    assert (delivered_event.status, delivered_event.attempts) == (EventStatus.DELIVERED, 1)
    assert DeliveryAttempt.objects.filter(event=delivered_event).count() == 1
    assert not Replay.objects.exists()
    assert flow_state(booked_flow) == flow_before
    assert Account.objects.get(pk=account.pk).state == Account.State.CONNECTED
    for path in (dashboard, event_page, flow_page):
        assert path.stat().st_size > 10_000


def test_auditor_posting_the_replay_action_by_hand_gets_403(
    browse, auditor, delivered_event, live_server
):
    page = browse(auditor)

    answer = replay_action_post(page, live_server.url, delivered_event)

    assert not Replay.objects.exists()
    assert refused(answer), answer.status


def test_personal_data_auditor_sees_the_name_and_the_viewing_is_recorded(
    browse, pd_auditor, delivered_event, live_server, screens
):
    page = browse(pd_auditor)
    page.goto(f"{live_server.url}{event_url(delivered_event)}")

    expect(page.locator(".sync-notice--unmasked")).to_be_visible()
    payload = page.locator("section[aria-labelledby=sync-payload-title] pre")
    expect(payload).to_contain_text("Фамилия1 Имя1 Отчество1")
    assert "79123123123" in page.content()
    screens.shot(page, "event-unmasked")
    access = PersonalDataAccess.objects.get(event=delivered_event)
    assert (access.user, access.kind) == (pd_auditor, PersonalDataAccess.Kind.VIEW)


def test_operator_replays_an_event_but_configures_nothing(
    browse, operator, delivered_event, booked_flow, enqueued, live_server, screens
):
    base = live_server.url
    page = browse(operator)
    page.goto(f"{base}{event_url(delivered_event)}")

    replay_button(page, delivered_event).click()
    expect(page.locator("ul.messagelist li.success")).to_be_visible()
    expect(page.locator(".field-status_badge .sync-badge--queued")).to_be_visible()
    expect(page.locator(".sync-timeline__replay")).to_contain_text(operator.username)
    screens.shot(page, "event-replayed")
    replay = Replay.objects.get(event=delivered_event)
    assert (replay.requested_by, replay.source) == (operator, Replay.Source.EVENT_PAGE)
    assert (replay.previous_status, replay.attempts_before) == (EventStatus.DELIVERED, 1)
    enqueued.assert_called_once()
    # The nudge asks a worker to drain the event's account.
    assert enqueued.call_args.args[0] == (booked_flow.account_id,)
    event = InboundEvent.objects.get(pk=delivered_event.pk)
    assert (event.status, event.attempts) == (EventStatus.QUEUED, 1)

    # Posted again by hand while queued: accepted as a request (so the page's session and
    # CSRF token pass, and the 403s below are for want of a right), but not sent twice.
    again = direct_post(page, base, f"/admin/sync/inboundevent/{delivered_event.pk}/replay/")
    assert again.status == 302
    assert Replay.objects.count() == 1

    flow_before = flow_state(booked_flow)
    page.goto(f"{base}/admin/sync/flow/{booked_flow.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text(booked_flow.name)
    expect(page.locator("div.submit-row input[type=submit]")).to_have_count(0)
    expect(page.locator(".add-row a:visible")).to_have_count(0)

    connect = direct_get(page, base, f"/amocrm/oauth/start/{booked_flow.account_id}/")
    assert refused(connect), connect.status
    change = direct_post(
        page, base, f"/admin/sync/flow/{booked_flow.pk}/change/", {"name": "changed"}
    )
    assert refused(change), change.status
    assert flow_state(booked_flow) == flow_before
