"""A news site on its own origin embedding the widget, as most sites will."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Notifier
from tests.browser.fakes import FakeFirebase
from tests.browser.push import attach, counted_link, fcm_web_push
from tests.browser.site import NewsSite

ARTICLE = "/2025/01/ceasefire-talks"


def test_a_reader_on_another_sites_article_subscribes_and_their_clicks_are_counted(
    page: Page,
    context: BrowserContext,
    notifier: Notifier,
    news_site: NewsSite,
    firebase: FakeFirebase,
) -> None:
    news_site.publish(api=notifier.url, article=ARTICLE)
    context.grant_permissions(["notifications"], origin=news_site.url)
    page.goto(news_site.url + ARTICLE)

    page.get_by_role("button", name="Get notifications").click()

    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    [token] = firebase.issued
    assert notifier.topics_of(token) == ["israel"]
    worker = attach(page, context)
    alert_id = notifier.sent_alert(headline="Ceasefire agreed", url=news_site.url + ARTICLE)
    worker.push(
        fcm_web_push(
            alert_id, title="Ceasefire agreed", body="Talks end", url=news_site.url + ARTICLE
        )
    )
    assert worker.click()["opened"] == [
        counted_link(notifier.url, alert_id, news_site.url + ARTICLE)
    ]
