"""The push service worker the widget registers: showing alerts and counting their clicks.

How pushes are delivered and clicks simulated in Chromium: see :mod:`tests.browser.push`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import Notifier
from tests.browser.push import PushWorker, attach, counted_link, fcm_web_push
from tests.browser.reader import subscribe


@pytest.fixture
def push_worker(page: Page, context: BrowserContext, notifier: Notifier) -> Iterator[PushWorker]:
    subscribe(page, context, notifier.url)
    worker = attach(page, context)
    yield worker
    worker.cdp.detach()


def test_a_push_shows_the_alert_as_a_notification(push_worker: PushWorker) -> None:
    push_worker.push(
        fcm_web_push(
            "alert-1", title="Ceasefire agreed", body="Talks end", url="https://news.example/a"
        )
    )

    [shown] = push_worker.shown()
    assert shown == {
        "title": "Ceasefire agreed",
        "body": "Talks end",
        "tag": "alert-1",
        "image": "https://news.example/picture.jpg",
        "data": {"alertId": "alert-1", "url": "https://news.example/a"},
        "renotify": False,
    }


def test_the_same_alert_pushed_twice_shows_one_notification(push_worker: PushWorker) -> None:
    push_worker.push(
        fcm_web_push(
            "alert-1", title="Ceasefire agreed", body="First", url="https://news.example/a"
        )
    )

    push_worker.push(
        fcm_web_push(
            "alert-1", title="Ceasefire agreed", body="Again", url="https://news.example/a"
        )
    )
    push_worker.push(
        fcm_web_push("alert-2", title="Markets rally", body="Other", url="https://news.example/b")
    )

    shown = push_worker.shown()
    assert sorted((n["tag"], n["body"]) for n in shown) == [
        ("alert-1", "Again"),
        ("alert-2", "Other"),
    ]


def test_clicking_a_notification_opens_the_article_and_counts_the_open(
    push_worker: PushWorker, context: BrowserContext, notifier: Notifier
) -> None:
    article = f"{notifier.url}/demo?story=ceasefire"
    alert_id = notifier.sent_alert(headline="Ceasefire agreed", url=article)
    push_worker.push(
        fcm_web_push(alert_id, title="Ceasefire agreed", body="Talks end", url=article)
    )

    clicked = push_worker.click()

    assert clicked == {"opened": [counted_link(notifier.url, alert_id, article)], "left": 0}
    tab = context.new_page()
    tab.goto(clicked["opened"][0])
    assert tab.url == article
    assert notifier.opens(alert_id) == 1


def test_a_click_on_a_translated_notification_lands_on_the_translation(
    push_worker: PushWorker, context: BrowserContext, notifier: Notifier
) -> None:
    article = f"{notifier.url}/demo?story=ceasefire"
    french = f"{notifier.url}/demo?lang=fr&story=ceasefire"
    alert_id = notifier.sent_alert(
        headline="Ceasefire agreed",
        url=article,
        translations={"fr": {"headline": "Cessez-le-feu", "url": french}},
    )
    # What FCM delivers to a French reader: the translation's words and URL.
    push_worker.push(fcm_web_push(alert_id, title="Cessez-le-feu", body="", url=french))

    [opened] = push_worker.click()["opened"]

    tab = context.new_page()
    tab.goto(opened)
    assert tab.url == french
    assert notifier.opens(alert_id) == 1
