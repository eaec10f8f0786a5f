"""Browser tests: Debian's Chromium driven by Playwright against the hub on a live server.

Screenshots go to ``var/screenshots/`` (kept after the run, named by test and step).
"""

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from django.db import connections
from django.utils import timezone

from integrations.sync.models import EventStatus, InboundEvent
from integrations.sync.updates import lead_update_prepare
from tests.backends import CHROMIUM
from tests.factories import DeliveryAttemptFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct-horse-battery"

# Without these, Chromium keeps trying to reach Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API refuses to start inside a running event loop; Django's async
    # safety check must also let the live server's ORM calls through.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    serialized = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    with sync_playwright() as playwright:
        # From here on the test thread runs in Playwright's context, where Django's
        # context-local connections are new objects: without the database's serialized
        # contents, a serialized_rollback test after the first would start on an empty
        # database (no seeded flows, no roles).
        for alias, contents in serialized.items():
            connections[alias]._test_serialized_contents = contents
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Screens:
    """Saves numbered screenshots of one test under var/screenshots/<test>/."""

    def __init__(self, name: str):
        self.folder = SCREENSHOTS / name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()  # a step renamed or dropped must not leave last run's picture
        self.count = 0
        self.saved: list[Path] = []

    def shot(self, page, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        self.saved.append(path)
        return path


@pytest.fixture
def screens(request) -> Screens:
    return Screens(request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture
def browse(chromium, live_server):
    """``browse(user)``: a Russian-speaking person's page, logged in through the login form."""
    contexts = []

    def open_as(user):
        context = chromium.new_context(
            locale="ru-RU", timezone_id="Europe/Moscow", viewport={"width": 1400, "height": 900}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        return page

    yield open_as
    for context in contexts:
        context.close()


@pytest.fixture(autouse=True)
def english(settings):
    """Overrides the suite's English: the browser tests see the admin as its people do."""
    settings.LANGUAGE_CODE = "ru"


@pytest.fixture
def delivered_event(client, booked_flow, booked_body) -> InboundEvent:
    """The sample booking as received through the intake and delivered once.

    No worker runs: the attempt is written as a delivery writes it, with the update the
    flow makes of the payload, so every place personal data travels is on the page.
    """
    # The nudge to the workers is left out; nothing else of the intake is.
    with mock.patch("integrations.sync.intake.events_enqueue"):
        response = client.post("/zdrav/booked", booked_body, content_type="application/json")
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    update = lead_update_prepare(flow=booked_flow, payload=event.payload).update
    DeliveryAttemptFactory(
        event=event,
        request_url=f"{booked_flow.account.api_base_url}/api/v4/leads/{event.lead_id}",
        request_body=update,
        response_body=json.dumps({"id": int(event.lead_id), "updated_at": 1704056400}),
    )
    event.status = EventStatus.DELIVERED
    event.attempts = 1
    event.delivered_at = timezone.now()
    event.save(update_fields=["status", "attempts", "delivered_at"])
    return event
