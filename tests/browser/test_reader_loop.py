"""The reader's whole loop on the ``make run`` stack, in Chromium, with no Firebase anywhere.

``notifier dev`` runs as a child process (SQLite, the embedded broker, the FCM emulator, a real
worker and beat), exactly as a newcomer starts it. Without FCM credentials the widget uses the
emulator's web push stand-in: the browser registers with the emulator, a page of the site holds
its stream, and the widget's own service worker shows what arrives. The editor's side is the API
the console calls; what the reader sees is read from ``registration.getNotifications()``.

The last tests use the suite's other API (tests/browser/conftest.py), configured as production
(FCM credentials): its pages never load or call the stand-in, and its worker ignores a push a page
tries to hand over.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import Notifier
from tests.browser.devstack import (
    IMAGE,
    SENT_WITHIN_S,
    STAND_IN_TOKEN_KEY,
    DevStack,
    eventually,
    push_worker,
    shown,
    subscribe_on_demo,
    wait_for_notifications,
)
from tests.browser.push import CLICK, COUNT_SHOWN, counted_link, fcm_web_push
from tests.browser.reader import permission_requests, stored_token, subscribe, widget
from tests.browser.site import NewsSite

Screenshot = Callable[[Page | Locator, str], Path]


def test_the_demo_shows_the_seeds_opt_in_and_asks_nothing_before_the_click(
    reader: BrowserContext, screenshot: Screenshot
) -> None:
    page = reader.new_page()

    page.goto("/demo")

    box = widget(page)
    expect(box.get_by_role("heading", name="Never miss breaking news on Israel")).to_be_visible()
    expect(box).to_contain_text("Get notifications to stay updated")
    expect(box.get_by_role("button", name="Get notifications")).to_be_visible()
    assert permission_requests(page) == 0
    screenshot(page, "offer")


def test_a_reader_subscribes_and_the_editors_alert_is_shown_and_its_click_counted(
    reader: BrowserContext, dev: DevStack, screenshot: Screenshot
) -> None:
    page = subscribe_on_demo(reader, dev)
    token = stored_token(page)
    assert token is not None and token.startswith("webpush-")
    assert dev.topics_of(token) == ["israel"]
    screenshot(widget(page), "subscribed")
    widget(page).get_by_role("button", name="Manage topics").click()
    expect(widget(page).get_by_role("checkbox", name="Israel")).to_be_checked()
    screenshot(widget(page), "topics")

    alert_id = dev.send_alert("Sirens sound across the north")

    [note] = wait_for_notifications(page)
    assert note["title"] == "Sirens sound across the north"
    assert note["body"].startswith("Take shelter")
    assert note["tag"] == alert_id
    assert note["image"] == IMAGE
    assert [m["display"]["title"] for m in dev.inbox_for(token)] == [
        "Sirens sound across the north"
    ]
    clicked = push_worker(reader, dev).evaluate(CLICK)
    url = dev.alert(alert_id)["url"]
    assert clicked == {"opened": [counted_link(dev.api, alert_id, url)], "left": 0}
    article = reader.new_page()
    article.goto(clicked["opened"][0])
    assert article.url.startswith(f"{dev.api}/demo?story=")
    assert dev.alert(alert_id)["opens"] == 1


def test_a_test_event_from_the_cli_reaches_the_subscribed_browser(
    reader: BrowserContext, dev: DevStack
) -> None:
    page = subscribe_on_demo(reader, dev)

    sent = subprocess.run(
        [sys.executable, "-m", "notifier", "send-test-event", "--topic", "israel",
         "--headline", "Sirens in the north"],
        env=dev.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert sent.returncode == 0, sent.stderr
    [note] = wait_for_notifications(page)
    assert note["title"] == "Sirens in the north"


def test_an_open_page_moves_the_subscription_when_the_emulator_forgets_the_browser(
    reader: BrowserContext, dev: DevStack
) -> None:
    page = subscribe_on_demo(reader, dev)
    forgotten = stored_token(page)

    # What a restarted emulator does to every browser: it no longer knows the token.
    dev.call("POST", f"{dev.emulator}/emulator/webpush/unregister", {"token": forgotten})

    eventually(lambda: stored_token(page) != forgotten)
    renewed = stored_token(page)
    assert renewed is not None and renewed.startswith("webpush-")
    assert dev.topics_of(renewed) == ["israel"]
    assert forgotten is not None and dev.topics_of(forgotten) is None
    dev.send_alert("Storm warning for the coast")
    [note] = wait_for_notifications(page)
    assert note["title"] == "Storm warning for the coast"


def test_a_reader_who_unsubscribed_gets_nothing(reader: BrowserContext, dev: DevStack) -> None:
    page = subscribe_on_demo(reader, dev)
    token = stored_token(page)
    assert token is not None
    page.get_by_role("button", name="Turn off notifications").click()
    expect(widget(page).get_by_role("button", name="Get notifications")).to_be_visible()
    # Someone still subscribed, so the alert is really sent and finishes.
    control = f"control-device-{time.monotonic_ns()}"
    dev.call(
        "POST",
        f"{dev.api}/v1/subscriptions",
        {"token": control, "platform": "android", "topics": ["israel"]},
    )

    alert_id = dev.send_alert("Markets close sharply lower")

    assert dev.wait_until_sent(alert_id)["counts"]["sent"] >= 1
    eventually(lambda: len(dev.inbox_for(control)) == 1)
    page.wait_for_timeout(1_000)
    assert shown(page) == []
    assert dev.inbox_for(token) == []
    assert dev.topics_of(token) is None


def test_a_reader_who_denies_permission_leaves_nothing_behind(
    reader: BrowserContext, dev: DevStack, screenshot: Screenshot
) -> None:
    before = dev.stand_in()["registrations"]
    page = reader.new_page()
    page.goto("/demo")
    page.evaluate("Notification.requestPermission = async () => 'denied'")

    page.get_by_role("button", name="Get notifications").click()

    expect(page.get_by_role("heading", name="Notifications are blocked")).to_be_visible()
    assert stored_token(page) is None
    assert page.evaluate(f"localStorage.getItem({STAND_IN_TOKEN_KEY!r})") is None
    assert dev.stand_in()["registrations"] == before
    screenshot(widget(page), "denied")


def test_a_second_tab_does_not_show_the_notification_twice(
    reader: BrowserContext, dev: DevStack
) -> None:
    first = subscribe_on_demo(reader, dev)
    second = reader.new_page()
    second.goto("/demo")
    expect(second.get_by_role("heading", name="You're subscribed")).to_be_visible()
    delivered = dev.stand_in()["webpush_delivered"]

    dev.send_alert("Ceasefire talks resume in Cairo")

    assert len(wait_for_notifications(first)) == 1
    first.wait_for_timeout(1_000)
    assert len(shown(first)) == 1
    # One stream per browser: the tab holding it got the push, the other waits to take over.
    assert dev.stand_in()["webpush_delivered"] == delivered + 1
    first.close()
    dev.send_alert("Envoys agree on a six-week pause")
    eventually(lambda: len(shown(second)) == 2, timeout_s=SENT_WITHIN_S)


def test_a_page_of_another_origin_cannot_read_a_readers_stream(
    reader: BrowserContext, dev: DevStack, news_site: NewsSite
) -> None:
    page = subscribe_on_demo(reader, dev)
    token = stored_token(page)
    opened = dev.stand_in()["webpush_streams_opened"]
    news_site.publish(api=dev.api, article="/elsewhere")
    other = reader.new_page()
    other.goto(news_site.url + "/elsewhere")

    attempts = other.evaluate(
        """async ({ emulator, token }) => {
          const url = `${emulator}/emulator/webpush/stream`;
          const body = JSON.stringify({ token });
          const results = {};
          try {
            const response = await fetch(url, {
              method: "POST", body, headers: { "Content-Type": "application/json" },
            });
            results.cors = `read ${response.status}: ${await response.text()}`;
          } catch (error) {
            results.cors = `blocked: ${error.name}`;
          }
          // A request the browser sends without asking first; its answer stays opaque.
          const blind = await fetch(url, { method: "POST", body, mode: "no-cors" });
          results.noCors = blind.type;
          return results;
        }""",
        {"emulator": dev.emulator, "token": token},
    )

    assert attempts == {"cors": "blocked: TypeError", "noCors": "opaque"}
    assert dev.stand_in()["webpush_streams_opened"] == opened
    alert_id = dev.send_alert("Rail line reopens after storm")
    [note] = wait_for_notifications(page)
    assert note["tag"] == alert_id


def test_a_production_page_never_loads_or_calls_the_stand_in(
    page: Page, context: BrowserContext, notifier: Notifier
) -> None:
    """With FCM credentials (the suite's other API) the widget takes the Firebase path only."""
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))

    subscribe(page, context, notifier.url)

    assert any("/widget/vendor/firebase/" in url for url in requested)
    assert not [url for url in requested if "standin" in url or "/emulator/" in url]
    assert "standin" not in page.content()


HAND_OVER_TWICE = """
async (push) => {
  const registration = await navigator.serviceWorker.getRegistration("/notifier-push/");
  const message = { type: "notifier:stand-in-push", id: "projects/p/messages/0:1", push };
  registration.active.postMessage(message);
  registration.active.postMessage(message);
}
"""


def test_the_worker_shows_a_handed_over_push_once_however_many_tabs_hand_it_over(
    reader: BrowserContext, dev: DevStack
) -> None:
    page = subscribe_on_demo(reader, dev)
    worker = push_worker(reader, dev)
    worker.evaluate(COUNT_SHOWN)

    page.evaluate(HAND_OVER_TWICE, fcm_web_push("a1", title="Once", body="b", url=dev.api))

    eventually(lambda: worker.evaluate("self.__notificationsShown") == 1)
    page.wait_for_timeout(500)
    assert worker.evaluate("self.__notificationsShown") == 1


def test_a_production_worker_ignores_pushes_handed_over_by_a_page(
    page: Page, context: BrowserContext, notifier: Notifier
) -> None:
    subscribe(page, context, notifier.url)
    [worker] = [w for w in context.service_workers if w.url.startswith(notifier.url)]
    worker.evaluate(COUNT_SHOWN)

    page.evaluate(HAND_OVER_TWICE, fcm_web_push("a1", title="Forged", body="b", url=notifier.url))

    page.wait_for_timeout(1_000)
    assert worker.evaluate("self.__notificationsShown") == 0
    assert (
        page.evaluate(
            "async () => (await (await navigator.serviceWorker.getRegistration('/notifier-push/'))"
            ".getNotifications()).length"
        )
        == 0
    )


def test_a_hebrew_reader_with_a_cap_of_one_gets_only_the_first_of_two_alerts(
    reader: BrowserContext, dev: DevStack, screenshot: Screenshot
) -> None:
    """The whole loop in Hebrew: the cap chosen in the widget decides what the worker sends."""
    reader.grant_permissions(["notifications"], origin=dev.api)
    page = reader.new_page()
    page.goto("/demo?lang=he")
    page.get_by_role("button", name="קבלת התראות").click()
    expect(page.get_by_role("heading", name="נרשמתם להתראות")).to_be_visible()
    token = stored_token(page)
    assert token is not None
    page.get_by_role("button", name="ניהול נושאים").click()
    page.get_by_label("מספר התראות מרבי ביום").fill("1")
    page.get_by_role("button", name="שמירת ההגדרות").click()
    expect(widget(page).get_by_role("status")).to_have_text("ההגדרות נשמרו.")
    screenshot(widget(page), "hebrew-cap")
    profile = dev.call("POST", f"{dev.api}/v1/subscriptions/lookup", {"token": token})
    assert (profile["locale"], profile["max_per_day"]) == ("he", 1)

    first = dev.wait_until_sent(dev.send_alert("Cabinet meets tonight"))
    second = dev.wait_until_sent(dev.send_alert("Markets close higher"))

    [note] = wait_for_notifications(page)
    assert note["title"] == "Cabinet meets tonight"
    assert [m["display"]["title"] for m in dev.inbox_for(token)] == ["Cabinet meets tonight"]
    assert first["counts"]["sent"] >= 1
    # Other readers of the shared dev stack may be capped too; this one certainly is.
    assert second["counts"]["suppressed_by_reason"]["daily_cap"] >= 1


def test_a_french_reader_clicks_the_french_alert_and_lands_on_the_french_article(
    reader: BrowserContext, dev: DevStack
) -> None:
    """The send picks the reader's translation (fr-CA -> fr); its URL is where the click lands."""
    reader.grant_permissions(["notifications"], origin=dev.api)
    page = reader.new_page()
    page.goto("/demo?lang=fr")
    page.get_by_role("button", name="Recevoir les notifications").click()
    expect(page.get_by_role("heading", name="Notifications activées")).to_be_visible()
    story = f"story={int(time.time() * 1000)}"
    english, french = f"{dev.api}/demo?{story}", f"{dev.api}/demo?lang=fr&{story}"
    alert = dev.call(
        "POST",
        f"{dev.api}/v1/alerts",
        {
            "headline": "Ceasefire agreed",
            "url": english,
            "topics": ["israel"],
            "hold_seconds": 0,
            "translations": {"fr": {"headline": "Cessez-le-feu conclu", "url": french}},
        },
        key=True,
    )

    # Sent first, shown second: a slow send under load and a lost push fail with their own words.
    assert dev.wait_until_sent(alert["id"])["counts"]["sent"] >= 1
    [note] = wait_for_notifications(page)
    assert note["title"] == "Cessez-le-feu conclu"
    [opened] = push_worker(reader, dev).evaluate(CLICK)["opened"]
    article = reader.new_page()
    article.goto(opened)

    assert article.url == french
    assert dev.alert(alert["id"])["opens"] == 1
