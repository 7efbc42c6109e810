"""What a browser cannot reach offline, replaced at the browser's own boundary.

The widget runs the real Firebase SDK (``getToken`` with our VAPID key and service worker). Two
things behind it need Google's servers, so the tests answer for them inside Chromium and leave
every line of the widget and the SDK as it runs in production:

- The browser's push service: ``PushManager.subscribe`` in Chromium registers with Google's push
  service over the network. :data:`FAKE_PUSH_SERVICE` gives back a subscription of the same shape
  (endpoint and keys), kept in localStorage so it survives a reload the way a real one does, and
  lets a test change its endpoint, which is what makes Firebase issue a rotated token.
- Firebase Installations and FCM registration (``*.googleapis.com``): :class:`FakeFirebase`
  answers them through Playwright's request routing, issuing FCM-shaped tokens and recording
  what the SDK asked for. Every other request off loopback is aborted, so nothing leaves the
  machine.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Route

PUSH_ENDPOINT_KEY = "test:push-endpoint"

FAKE_PUSH_SERVICE = r"""
(() => {
  if (!("PushManager" in window)) return;
  const KEY = "__KEY__";
  const bytes = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255).buffer;
  const subscription = (endpoint) => ({
    endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: bytes(65, 4) },
    getKey: (name) => (name === "p256dh" ? bytes(65, 4) : bytes(16, 9)),
    toJSON: () => ({ endpoint, expirationTime: null, keys: {} }),
    unsubscribe: async () => (localStorage.removeItem(KEY), true),
  });
  PushManager.prototype.subscribe = async function () {
    if (Notification.permission !== "granted") {
      throw new DOMException("Registration failed - permission denied", "NotAllowedError");
    }
    const endpoint = `https://push.test/send/${crypto.randomUUID()}`;
    localStorage.setItem(KEY, endpoint);
    return subscription(endpoint);
  };
  PushManager.prototype.getSubscription = async function () {
    const endpoint = localStorage.getItem(KEY);
    return endpoint ? subscription(endpoint) : null;
  };
})();
""".replace("__KEY__", PUSH_ENDPOINT_KEY)

# Counts the permission prompts a page opened, to show none appears before the reader clicks.
PERMISSION_SPY = r"""
(() => {
  if (!("Notification" in window)) return;
  const request = Notification.requestPermission.bind(Notification);
  window.__permissionRequests = 0;
  Notification.requestPermission = (...args) => {
    window.__permissionRequests += 1;
    return request(...args);
  };
})();
"""

# A browser without web push (older browsers, iOS Safari outside a Home Screen app).
NO_PUSH_SUPPORT = "delete window.PushManager;"

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
}


@dataclass
class FakeFirebase:
    """Answers Firebase Installations and FCM registration as Google would, and remembers."""

    project_id: str
    registrations: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def issued(self) -> list[str]:
        return [r["token"] for r in self.registrations]

    def route(self, route: Route) -> None:
        """The handler for every request of a browser context (``context.route("**/*", ...)``)."""
        url = urlsplit(route.request.url)
        if url.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        elif url.hostname == "firebaseinstallations.googleapis.com":
            self._installations(route)
        elif url.hostname == "fcmregistrations.googleapis.com":
            self._registrations(route, url.path)
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _installations(self, route: Route) -> None:
        if route.request.method == "OPTIONS":
            return route.fulfill(status=204, headers=_CORS)
        fid = (route.request.post_data_json or {}).get("fid", "cGxheXdyaWdodC1maWQ")
        self._json(
            route,
            {
                "name": f"projects/{self.project_id}/installations/{fid}",
                "fid": fid,
                "refreshToken": "test-refresh-token",
                "authToken": {"token": "test-installation-auth", "expiresIn": "604800s"},
            },
        )

    def _registrations(self, route: Route, path: str) -> None:
        method = route.request.method
        if method == "OPTIONS":
            return route.fulfill(status=204, headers=_CORS)
        if method == "POST":
            token = f"web-{next(self._serial):04d}:APA91b" + "w" * 40
            self.registrations.append({"token": token, **(route.request.post_data_json or {})})
            return self._json(route, {"token": token})
        token = path.rsplit("/", 1)[-1]
        if method == "DELETE":
            self.deleted.append(token)
            return self._json(route, {})
        return self._json(route, {"token": token})  # PATCH: a weekly refresh keeps the token

    @staticmethod
    def _json(route: Route, body: dict[str, Any]) -> None:
        route.fulfill(
            status=200, headers=_CORS, content_type="application/json", body=json.dumps(body)
        )
