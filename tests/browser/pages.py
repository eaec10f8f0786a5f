"""What browser tests do with a page beyond clicking: requests made directly with the
page's session, as someone would with the browser's developer tools, and waiting for
what the Celery worker does in another process."""

import time

from playwright.sync_api import APIResponse, Page


def csrf_token(page: Page) -> str:
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return cookies["csrftoken"]


def direct_post(page: Page, base_url: str, path: str, data: dict | None = None) -> APIResponse:
    """A form POST with the page's cookies and a valid CSRF token, redirects not followed."""
    return page.request.post(
        f"{base_url}{path}",
        form={"csrfmiddlewaretoken": csrf_token(page), **(data or {})},
        headers={"Referer": f"{base_url}/admin/"},
        max_redirects=0,
    )


def direct_get(page: Page, base_url: str, path: str) -> APIResponse:
    return page.request.get(f"{base_url}{path}", max_redirects=0)


def refused(response: APIResponse) -> bool:
    """A 403 for want of a right: not Django's CSRF failure, which is a 403 too."""
    return response.status == 403 and "CSRF" not in response.text()


def reload_until(page: Page, condition, *, what: str, explain=None, timeout: float = 30.0):
    """Reloads the page until ``condition(page)`` holds, as a person waiting would.

    ``explain()``, when given, says on a timeout what the other processes were doing.
    """
    deadline = time.monotonic() + timeout
    while not condition(page):
        if time.monotonic() > deadline:
            details = f"\n{explain()}" if explain else ""
            raise AssertionError(f"not seen within {timeout:.0f}s: {what}{details}")
        page.wait_for_timeout(300)
        page.reload()
