"""Browser tests: Debian's Chromium driven by Playwright against the hub on a live server.

Screenshots go to ``var/screenshots/`` (kept after the run, named by test and step).
"""

import os
from pathlib import Path

import pytest

from tests.backends import CHROMIUM

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
    with sync_playwright() as playwright:
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
        self.count = 0

    def shot(self, page, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
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
