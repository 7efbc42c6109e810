"""Pushing to the widget's service worker in Chromium, and seeing and clicking what it shows.

Pushes are real push events, delivered to the worker by Chromium's DevTools protocol
(``ServiceWorker.deliverPushMessage``) with the JSON FCM puts in a web push, and what is on
screen is read with ``registration.getNotifications()`` once the worker has shown it (a counter
wrapped around ``showNotification`` says when) and Chromium has settled. No browser API can
click a system notification, so the click is a ``notificationclick`` event dispatched inside the
worker with the real notification; such a script-made event may not extend its own lifetime or
open windows, so ``waitUntil`` and ``clients.openWindow`` record what the worker asked for, and
a test then opens that address the way the browser would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from playwright.sync_api import BrowserContext, CDPSession, Page, Worker

from tests.browser.reader import eventually

SCOPE = "/notifier-push/"

CLICK = """
async () => {
  const [notification] = await self.registration.getNotifications();
  const opened = [];
  const pending = [];
  self.clients.openWindow = async (url) => (opened.push(url), null);
  const event = new NotificationEvent("notificationclick", { notification });
  event.waitUntil = (promise) => pending.push(promise);
  self.dispatchEvent(event);
  await Promise.all(pending);
  const left = await self.registration.getNotifications();
  return { opened, left: left.length };
}
"""

# Counts the notifications the worker has finished showing, so a test knows when to look.
COUNT_SHOWN = """
() => {
  const show = self.registration.showNotification.bind(self.registration);
  self.__notificationsShown = 0;
  self.registration.showNotification = (title, options) =>
    show(title, options).then(() => { self.__notificationsShown += 1; });
}
"""
# Headless Chromium registers a shown notification as displayed a moment after showNotification
# resolves; a getNotifications() in between drops it from the list (a race in its bookkeeping).
SETTLE_MS = 300

SHOWN = f"""
async () => {{
  const registration = await navigator.serviceWorker.getRegistration({SCOPE!r});
  return (await registration.getNotifications()).map((n) => ({{
    title: n.title, body: n.body, tag: n.tag, image: n.image, data: n.data, renotify: n.renotify,
  }}));
}}
"""


def counted_link(api: str, alert_id: str, url: str) -> str:
    """Where the worker sends a click: the open counter, naming the URL the push carried (as
    ``encodeURIComponent`` writes it)."""
    return f"{api}/o/{alert_id}?to=" + quote(url, safe="!*'()")


def fcm_web_push(alert_id: str, *, title: str, body: str, url: str) -> dict[str, Any]:
    """What FCM delivers to a browser for a message built by notifier.fcm.sender."""
    return {
        "notification": {
            "title": title,
            "body": body,
            "image": "https://news.example/picture.jpg",
            "tag": alert_id,
        },
        "data": {"alert_id": alert_id, "url": url},
        "fcmOptions": {"link": url},
        "from": "1234567890",
        "fcmMessageId": "5f0c1e6a-0000-4000-8000-000000000001",
        "priority": "high",
    }


@dataclass
class PushWorker:
    """The widget's registered push worker, and a way to push to it."""

    page: Page
    cdp: CDPSession
    registration_id: str
    origin: str
    worker: Worker

    def push(self, payload: dict[str, Any]) -> None:
        """Deliver a push and wait until the worker's notification is on screen."""
        before = self.worker.evaluate("self.__notificationsShown")
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": self.origin,
                "registrationId": self.registration_id,
                "data": json.dumps(payload),
            },
        )
        eventually(self.page, lambda: self.worker.evaluate("self.__notificationsShown") > before)
        self.page.wait_for_timeout(SETTLE_MS)

    def shown(self) -> list[dict[str, Any]]:
        """The notifications on screen."""
        shown: list[dict[str, Any]] = self.page.evaluate(SHOWN)
        return shown

    def click(self) -> dict[str, Any]:
        result: dict[str, Any] = self.worker.evaluate(CLICK)
        return result


def attach(page: Page, context: BrowserContext) -> PushWorker:
    """The push worker the widget on ``page`` registered (after a reader subscribed there)."""
    origin = page.evaluate("location.origin")
    [worker] = [w for w in context.service_workers if w.url.startswith(origin)]
    cdp = context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    eventually(page, lambda: any(r["scopeURL"].endswith(SCOPE) for r in registrations))
    [registration] = [r for r in registrations if r["scopeURL"].endswith(SCOPE)]
    worker.evaluate(COUNT_SHOWN)
    return PushWorker(page, cdp, registration["registrationId"], origin, worker)
