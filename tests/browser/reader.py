"""What a reader does and sees on the demo article, in the words the tests use."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Locator, Page, expect

TOKEN_KEY = "notifier:web-push-token"


def widget(page: Page) -> Locator:
    return page.locator(".notifier-optin")


def status(page: Page) -> Locator:
    return widget(page).get_by_role("status")


def permission_requests(page: Page) -> int:
    """How many times the page asked for permission (counted by fakes.PERMISSION_SPY)."""
    return int(page.evaluate("window.__permissionRequests"))


def stored_token(page: Page) -> str | None:
    token: str | None = page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
    return token


def allow_and_click(
    page: Page,
    context: BrowserContext,
    base_url: str,
    *,
    path: str = "/demo",
    button: str = "Get notifications",
) -> None:
    """A reader who will allow notifications opens ``path`` and clicks the widget's ``button``.

    Waits for nothing after the click: what the reader should then see is the test's to say.
    """
    context.grant_permissions(["notifications"], origin=base_url)
    page.goto(path)
    page.get_by_role("button", name=button).click()


def subscribe(page: Page, context: BrowserContext, base_url: str) -> None:
    """A reader on the demo article clicks the button and allows notifications."""
    allow_and_click(page, context, base_url)
    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()


def eventually(page: Page, condition: Callable[[], bool], timeout_ms: int = 5_000) -> None:
    """Wait for something the page does after its last visible change (letting routes run)."""
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    assert condition()
