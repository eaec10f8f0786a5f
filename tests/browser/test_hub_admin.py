"""A hub admin runs the hub in the browser: catalogue, mappings, preview, a booking
delivered by a real Celery worker to the AmoCRM emulator, and a replay of it."""

import re
import warnings

import pytest
import requests
from playwright.sync_api import expect

from integrations.sync.delivery import events_sweep
from integrations.sync.models import EventStatus, FieldMapping, InboundEvent, Replay
from tests.browser.pages import reload_until
from tests.conftest import FIXTURES
from tests.workers import field_values

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LEAD_ID = 23392663
RDESK_ID = "88888"
GUESTS_TOTAL_FIELD = ("Сумма МЦ", 1305203)  # numeric, not mapped by the seeded flow
PAID_FIELD = ("Оплачено", 1305167)  # numeric, mapped to "paid" by the seeded flow
# A delivery to the emulator takes well under a second.
SWEEP_AFTER = 10.0


def option_value(page, select: str, field_name: str) -> str:
    """The value of the one option of ``select`` offering the AmoCRM field by that name."""
    option = page.locator(f"{select} option").filter(has_text=field_name)
    expect(option).to_have_count(1)
    return option.get_attribute("value")


def mapping_row_add(page) -> int:
    """Clicks the inline's "add another" and returns the new form's index."""
    index = int(page.input_value("#id_mappings-TOTAL_FORMS"))
    page.locator("#mappings-group .add-row a").click()
    expect(page.locator(f"#id_mappings-{index}-source")).to_be_visible()
    return index


def worker_state(worker) -> str:
    events = InboundEvent.objects.values("pk", "status", "attempts", "next_attempt_at")
    return f"events: {list(events)}\nworker log:\n{worker.log()}"


def until_delivered(page, worker, *, attempts: int) -> None:
    """Reloads the event page until it shows the event delivered after ``attempts``.

    A worker that finds the event row locked at the moment it claims it drops the nudge
    and leaves the event to beat's sweeper, which does not run here: if nothing happens
    for a while, the test sweeps as beat would, and says so.
    """

    def delivered(p) -> bool:
        shown = p.locator(".sync-timeline__attempt").count()
        return badge(p, "delivered").count() == 1 and shown == attempts

    try:
        reload_until(page, delivered, what="delivered", timeout=SWEEP_AFTER)
    except AssertionError:
        swept = events_sweep(grace=0)
        warnings.warn(f"the delivery nudge was dropped; swept {swept} event(s)", stacklevel=2)
        reload_until(
            page,
            delivered,
            what=f"delivered after {attempts} attempt(s)",
            explain=lambda: worker_state(worker),
        )


def badge(page, status: str):
    return page.locator(f".field-status_badge .sync-badge--{status}")


def test_hub_admin_configures_previews_and_replays_a_booking(
    browse, hub_admin, emulator, emulator_account, emulator_flow, worker, live_server, screens
):
    base = live_server.url
    page = browse(hub_admin)

    # The catalogue is fetched from AmoCRM with the accounts list's action.
    page.goto(f"{base}/admin/amocrm/account/")
    page.check(f"input[name=_selected_action][value='{emulator_account.pk}']")
    page.select_option("select[name=action]", "refresh_catalogue")
    page.click("button[name=index]")
    success = page.locator("ul.messagelist li.success")
    expect(success).to_contain_text(emulator_account.name, ignore_case=True)
    # "<account>: 16 fields, 3 pipelines." in whatever words the language has.
    expect(success).to_have_text(re.compile(r":\D*16\D+3\D"))
    assert emulator_account.custom_fields.count() == 16

    # On the flow page a field is picked by its name; a value it cannot hold is refused.
    flow_url = f"{base}/admin/sync/flow/{emulator_flow.pk}/change/"
    page.goto(flow_url)
    mappings_before = emulator_flow.mappings.count()
    row = mapping_row_add(page)
    page.select_option(f"#id_mappings-{row}-source", "guests_text")
    name, field_id = GUESTS_TOTAL_FIELD
    chosen = option_value(page, f"#id_mappings-{row}-field_id", name)
    assert chosen == str(field_id)
    page.select_option(f"#id_mappings-{row}-field_id", chosen)
    page.click("input[name=_continue]")
    expect(page.locator("p.errornote")).to_be_visible()
    refusal = page.locator(f"#mappings-{row} td.field-field_id .errorlist")
    expect(refusal).to_contain_text(name)
    assert emulator_flow.mappings.count() == mappings_before
    screens.shot(page, "flow-mapping-refused")

    # The same row with a number in it is saved, its type taken from the catalogue.
    page.select_option(f"#id_mappings-{row}-source", "guests_count")
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist li.success")).to_be_visible()
    mapping = FieldMapping.objects.get(flow=emulator_flow, field_id=field_id)
    assert (mapping.source, mapping.field_type) == ("guests_count", "numeric")
    saved_row = page.locator(f"#mappings-{mappings_before}")
    expect(saved_row.locator("select[name$='-field_id']")).to_have_value(str(field_id))
    expect(saved_row.locator("select[name$='-source']")).to_have_value("guests_count")
    screens.shot(page, "flow-mapping-saved")

    # A field already mapped in the flow cannot take a second value.
    row = mapping_row_add(page)
    page.select_option(f"#id_mappings-{row}-source", "total")
    field_select = f"#id_mappings-{row}-field_id"
    page.select_option(field_select, option_value(page, field_select, PAID_FIELD[0]))
    page.click("input[name=_continue]")
    expect(page.locator(f"#mappings-{row} td.field-field_id .errorlist")).to_be_visible()
    assert emulator_flow.mappings.count() == mappings_before + 1

    # Preview of the sample booking: the PATCH a delivery would send, nothing sent.
    page.goto(flow_url)
    page.click(f"a[href='/admin/sync/flow/{emulator_flow.pk}/preview/']")
    expect(page).to_have_url(f"{base}/admin/sync/flow/{emulator_flow.pk}/preview/")
    page.fill("textarea[name=payload]", (FIXTURES / "rdesk/rdesk-booked.json").read_text())
    page.click("form[method=post][action$='/preview/'] input[type=submit]")
    expect(page.locator("#nothing-sent")).to_be_visible()
    request_line = page.locator("#preview-requests .preview-request")
    expect(request_line).to_have_count(1)
    expect(request_line).to_contain_text("PATCH")
    expect(request_line).to_contain_text(f"/api/v4/leads/{LEAD_ID}")
    expect(page.locator("#preview-requests pre")).to_contain_text(str(field_id))
    screens.shot(page, "flow-preview")
    assert not InboundEvent.objects.exists()
    assert emulator.state.lead(LEAD_ID)["price"] == 0

    # RDESK posts the booking.
    response = requests.post(
        f"{base}/zdrav/booked",
        data=(FIXTURES / "rdesk/rdesk-booked.json").read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}

    # Found by its RDESK id, and followed until the worker has delivered it.
    page.goto(f"{base}/admin/sync/inboundevent/")
    page.fill("#searchbar", RDESK_ID)
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("td.field-rdesk_id")).to_have_text(RDESK_ID)
    rows.locator("th.field-id a").click()
    event = InboundEvent.objects.get()
    expect(page).to_have_url(re.compile(rf"/admin/sync/inboundevent/{event.pk}/change/"))
    until_delivered(page, worker, attempts=1)
    expect(badge(page, "delivered")).to_have_text("Доставлено")
    attempts = page.locator(".sync-timeline__attempt")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text(f"PATCH {emulator_account.api_base_url}")
    screens.shot(page, "event-delivered")
    assert field_values(emulator.state.lead(LEAD_ID))[field_id] == ["2"]

    # Replayed from its page: a new attempt is appended, the first one stays.
    page.click(f"form[action='/admin/sync/inboundevent/{event.pk}/replay/'] button")
    expect(page.locator("ul.messagelist li.success")).to_be_visible()
    until_delivered(page, worker, attempts=2)
    expect(page.locator(".sync-timeline__replay")).to_contain_text(hub_admin.username)
    screens.shot(page, "event-replayed")
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.DELIVERED, 2)
    assert Replay.objects.get(event=event).requested_by == hub_admin

    page.goto(f"{base}/admin/")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.locator("#sync-dashboard svg").first).to_be_visible()
    screens.shot(page, "dashboard")
    assert all(path.stat().st_size > 10_000 for path in screens.saved)
