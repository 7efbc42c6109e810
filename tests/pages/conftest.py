"""The console and dashboard in headless Chromium, against the real pipeline.

Each test gets the pipeline ``Stack`` (PostgreSQL, Redis broker, Celery workers on demand, the
FCM emulator) with its API served over HTTP by werkzeug in a thread of this process, so the pages
call the same app the tests inspect. Chromium is Debian's ``/usr/bin/chromium``; without it these
tests skip, or fail when NOTIFIER_REQUIRE_SERVICES=1. Screenshots go to ``test-artifacts/pages/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.http.app import create_app
from tests.pipeline.conftest import Stack, broker, emulator, stack_factory, subscribe
from tests.support import free_port

__all__ = [
    "broker",
    "emulator",
    "stack_factory",
]  # the pipeline's fixtures, shared with these tests

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"


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


def subscribe_readers(stack: Stack, prefix: str, count: int) -> None:
    """``count`` Android readers on "israel", each through the API, with FCM-shaped tokens."""
    for n in range(count):
        subscribe(stack, f"{prefix}-{n:02d}-APA91b{'x' * 20}", ["israel"])


def sent_alert(stack: Stack, headline: str, *, audience: int) -> dict[str, Any]:
    """Post ``headline`` with no hold; return it once sent, after checking all ``audience`` got it.

    A worker must be running (``stack.start_worker``).
    """
    alert = stack.post_alert(headline=headline, hold_seconds=0)
    assert stack.wait_for_status(alert["id"])["counts"]["sent"] == audience
    return alert


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
