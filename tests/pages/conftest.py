"""The console and dashboard in headless Chromium, against the real pipeline.

Each test gets the pipeline ``Stack`` (PostgreSQL, Redis broker, Celery workers on demand, the
FCM emulator) with its API served over HTTP by werkzeug in a thread of this process, so the pages
call the same app the tests inspect. Chromium is Debian's ``/usr/bin/chromium``; without it these
tests skip, or fail when NOTIFIER_REQUIRE_SERVICES=1. Screenshots go to ``test-artifacts/pages/``.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import make_server

from notifier.apikeys import create_key
from notifier.db import transaction
from notifier.http.app import create_app
from tests.conftest import service_unavailable
from tests.pipeline.conftest import Stack, emulator, stack_factory
from tests.support import free_port

__all__ = ["emulator", "stack_factory"]  # the pipeline's fixtures, shared with these tests

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES_BROKER_DB = 13  # the pipeline tests' broker uses 14, counters and limits 15
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _borrowed_browser() -> Browser:
    """Chromium from the sync Playwright that another suite of this session keeps running.

    Playwright's sync API allows one instance per thread, and tests/browser holds one for the
    whole session; any instance found that was already stopped fails to launch and is skipped.
    """
    for candidate in [obj for obj in gc.get_objects() if isinstance(obj, Playwright)]:
        try:
            return _launch(candidate)
        except PlaywrightError:
            continue
    raise RuntimeError("no running Playwright to launch Chromium from")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Chromium for one test module; module scope so that it is gone before another suite starts
    a Playwright of its own (pytest may keep a package-scoped fixture alive until the end)."""
    if not CHROMIUM.is_file():
        service_unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        own: Playwright | None = sync_playwright().start()
    except PlaywrightError:
        own = None
    browser = _launch(own) if own is not None else _borrowed_browser()
    yield browser
    browser.close()
    if own is not None:
        own.stop()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """The pipeline; its Redis keys carry a prefix of their own (see the pipeline conftest)."""
    return stack_factory()


@pytest.fixture
def api_url(stack: Stack) -> Iterator[str]:
    """The stack's API over real HTTP, as a browser reaches it."""
    server = make_server("127.0.0.1", free_port(), create_app(runtime=stack.runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pages-api", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def ops_key(stack: Stack) -> str:
    with transaction(stack.runtime.sessions) as session:
        key, _ = create_key(session, "ops", "dashboard tests")
    return key


@dataclass
class Browsing:
    """One browser tab on the API, with what the page logged that a test should fail on."""

    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    def open(self, path: str, key: str | None = None) -> None:
        """Go to ``path`` and, given a key, sign in through the page's form and wait for it."""
        self.page.goto(self.base_url + path)
        if key is not None:
            self.sign_in(key)
            self.page.locator("#app").wait_for(state="visible")

    def sign_in(self, key: str) -> None:
        self.page.locator("#api-key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browsing(chromium: Browser, api_url: str) -> Iterator[Browsing]:
    """A fresh browser context (no storage carried over); fails on script errors and CSP reports."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    tab = Browsing(page, api_url)
    page.on("pageerror", lambda error: tab.problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            tab.problems.append(f"CSP: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield tab
    context.close()
    assert tab.problems == [], tab.problems
