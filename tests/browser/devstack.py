"""``notifier dev`` as a newcomer runs it (``make run``), and what the reader-loop tests do with it.

The stack is a child process (SQLite, the embedded broker, the FCM emulator, a real worker and
beat) with nothing from the environment's ``NOTIFIER_*``; a test reaches it only over HTTP, as a
browser, an editor's script or a CMS would. Without FCM credentials the widget uses the
emulator's web push stand-in, so what a reader sees is read from
``registration.getNotifications()`` in the widget's own service worker. The fixtures ``dev`` and
``reader`` (tests/browser/conftest.py) hand these to the tests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, Worker, expect

from tests.browser.push import SCOPE, SETTLE_MS
from tests.factories import signed_event
from tests.support import run_notifier_dev

STAND_IN_TOKEN_KEY = "notifier:stand-in-token"
IMAGE = "https://news.example/picture.jpg"
SENT_WITHIN_S = 30.0
# Every test subscribes from 127.0.0.1, on either API; the limits have tests of their own.
READER_RATE_LIMITS = (
    "subscriptions=10000/minute;subscription_token=10000/minute;"
    "lookup=10000/minute;opens=10000/minute"
)


@dataclass
class DevStack:
    """``notifier dev`` as a newcomer runs it, and what an editor, a CMS and a test ask of it."""

    api: str
    emulator: str
    editor_key: str
    webhook_secret: str
    env: dict[str, str]

    def call(
        self,
        method: str,
        url: str,
        body: object | None = None,
        key: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """JSON (or ``bytes`` as given) over HTTP; ``None`` for a 404 or an empty answer."""
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if key:
            sent["Authorization"] = f"Bearer {self.editor_key}"
        sent.update(headers or {})
        # Bytes go as they are: a webhook signature covers them exactly.
        raw = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(url, data=raw, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return json.loads(answer) if answer else None

    def send_alert(self, headline: str, topic: str = "israel") -> str:
        """What the console's composer does: an alert with no hold, sent at once."""
        alert = self.call(
            "POST",
            f"{self.api}/v1/alerts",
            {
                "headline": headline,
                "body": "Take shelter and follow the Home Front Command's instructions.",
                "url": f"{self.api}/demo?story={int(time.time() * 1000)}",
                "image_url": IMAGE,
                "topics": [topic],
                "hold_seconds": 0,
            },
            key=True,
        )
        return str(alert["id"])

    def publish_article(self, **data: Any) -> dict[str, Any]:
        """``article.published`` signed with the stack's webhook secret, as the CMS sends it.

        Returns the article and the API's answer (``{"decision": ...}`` or the alert).
        """
        article = {
            "id": f"story-{uuid.uuid4().hex[:8]}",
            "url": f"{self.api}/demo?story={uuid.uuid4().hex[:8]}",
            "headline": "Ceasefire talks resume in Cairo",
            "summary": "Delegations meet again after a week's pause.",
            "image_url": IMAGE,
            "topics": ["israel"],
            "breaking": False,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **data,
        }
        body, headers = signed_event(self.webhook_secret, "article.published", article)
        answer = self.call("POST", f"{self.api}/v1/events", body, headers=headers)
        return {"article": article, "answer": answer}

    def alert(self, alert_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"{self.api}/v1/alerts/{alert_id}", key=True)
        return found

    def wait_until_sent(self, alert_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + SENT_WITHIN_S
        while time.monotonic() < deadline:
            alert = self.alert(alert_id)
            if alert["status"] not in ("scheduled", "sending"):
                return alert
            time.sleep(0.2)
        raise AssertionError(f"alert {alert_id} was not sent within {SENT_WITHIN_S}s")

    def topics_of(self, token: str) -> list[str] | None:
        profile = self.call("POST", f"{self.api}/v1/subscriptions/lookup", {"token": token})
        return None if profile is None else list(profile["topics"])

    def inbox_for(self, token: str) -> list[dict[str, Any]]:
        found = self.call("POST", f"{self.emulator}/emulator/messages/search", {"token": token})
        return list(found["messages"])

    def stand_in(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.call("GET", f"{self.emulator}/emulator/stats")
        return {**stats["webpush"], **stats["outcomes"]}


@contextmanager
def run_dev_stack(data: Path) -> Iterator[DevStack]:
    """Start ``python -m notifier dev`` with its data under ``data``; stop it and its children."""
    with run_notifier_dev(
        data,
        ready="Ctrl-C stops everything",
        extra_env={"NOTIFIER_RATE_LIMITS": READER_RATE_LIMITS},
    ) as dev:
        var = data / "var"
        yield DevStack(
            dev.api,
            dev.emulator,
            (var / "dev-editor-key").read_text().strip(),
            (var / "webhook-secret").read_text().strip(),
            dev.env,
        )


def subscribe_on_demo(reader: BrowserContext, dev: DevStack) -> Page:
    """A reader allows notifications, opens /demo and clicks "Get notifications"."""
    reader.grant_permissions(["notifications"], origin=dev.api)
    page = reader.new_page()
    page.goto("/demo")
    page.get_by_role("button", name="Get notifications").click()
    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    return page


def shown(page: Page) -> list[dict[str, Any]]:
    """The notifications the widget's service worker has on screen."""
    notes: list[dict[str, Any]] = page.evaluate(
        f"""async () => {{
          const registration = await navigator.serviceWorker.getRegistration({SCOPE!r});
          return (await registration.getNotifications()).map((n) => ({{
            title: n.title, body: n.body, tag: n.tag, image: n.image, data: n.data,
          }}));
        }}"""
    )
    return notes


def wait_for_notifications(page: Page, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SENT_WITHIN_S
    while time.monotonic() < deadline:
        if len(shown(page)) >= count:
            # Headless Chromium files a notification a moment after showing it (tests.browser.push).
            page.wait_for_timeout(SETTLE_MS)
            return shown(page)
        page.wait_for_timeout(100)
    raise AssertionError(f"no notification within {SENT_WITHIN_S}s")


def push_worker(reader: BrowserContext, dev: DevStack) -> Worker:
    [worker] = [w for w in reader.service_workers if w.url.startswith(dev.api)]
    return worker


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)
