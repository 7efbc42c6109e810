"""The opt-in widget on the demo article, as a reader uses it in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from tests.browser.conftest import VAPID_KEY, Notifier
from tests.browser.fakes import NO_PUSH_SUPPORT, PUSH_ENDPOINT_KEY, FakeFirebase
from tests.browser.reader import (
    eventually,
    permission_requests,
    status,
    stored_token,
    subscribe,
    widget,
)

Screenshot = Callable[[Page | Locator, str], Path]


def test_the_article_loads_with_the_offer_and_no_permission_prompt(
    page: Page, screenshot: Screenshot
) -> None:
    page.goto("/demo")

    box = page.get_by_role("region", name="Never miss breaking news on Israel")
    expect(box.get_by_role("button", name="Get notifications")).to_be_visible()
    assert permission_requests(page) == 0
    screenshot(page, "demo-article")
    screenshot(box, "not-yet-asked")


def test_a_reader_who_allows_notifications_is_subscribed(
    page: Page,
    context: BrowserContext,
    notifier: Notifier,
    firebase: FakeFirebase,
    screenshot: Screenshot,
) -> None:
    subscribe(page, context, notifier.url)

    [token] = firebase.issued
    assert notifier.topics_of(token) == ["israel"]
    assert permission_requests(page) == 1
    assert firebase.registrations[0]["web"]["applicationPubKey"] == VAPID_KEY
    expect(status(page)).to_have_text("You're subscribed to breaking news on Israel.")
    assert firebase.blocked == []
    screenshot(widget(page), "subscribed")


def test_a_reader_who_blocks_notifications_is_told_how_to_allow_them(
    page: Page, notifier: Notifier, screenshot: Screenshot
) -> None:
    page.goto("/demo")
    page.evaluate("Notification.requestPermission = async () => 'denied'")

    page.get_by_role("button", name="Get notifications").click()

    expect(page.get_by_role("heading", name="Notifications are blocked")).to_be_visible()
    expect(widget(page)).to_contain_text("allow notifications for this site")
    expect(widget(page).get_by_role("button")).to_have_count(0)
    assert notifier.tokens() == []
    screenshot(widget(page), "denied")


def test_a_reader_who_dismisses_the_prompt_can_ask_again_later(
    page: Page, notifier: Notifier
) -> None:
    page.goto("/demo")
    page.evaluate("Notification.requestPermission = async () => 'default'")

    page.get_by_role("button", name="Get notifications").click()

    expect(status(page)).to_have_text(
        "No problem. You can turn on notifications whenever you like."
    )
    expect(page.get_by_role("button", name="Get notifications")).to_be_enabled()
    assert notifier.tokens() == []


def test_a_reader_can_turn_notifications_off_from_the_widget(
    page: Page,
    notifier: Notifier,
    firebase: FakeFirebase,
    subscribed_token: str,
    screenshot: Screenshot,
) -> None:
    page.get_by_role("button", name="Turn off notifications").click()

    expect(status(page)).to_have_text("Notifications are off. We won't send you any more.")
    expect(page.get_by_role("button", name="Get notifications")).to_be_visible()
    assert notifier.tokens() == []
    assert stored_token(page) is None
    eventually(page, lambda: firebase.deleted == [subscribed_token])
    screenshot(widget(page), "unsubscribed")


def test_a_reader_picks_topics_from_the_catalogue(
    page: Page, notifier: Notifier, subscribed_token: str, screenshot: Screenshot
) -> None:
    page.get_by_role("button", name="Manage topics").click()
    topics = page.get_by_role("group", name="Notify me about")
    expect(topics.get_by_role("checkbox", name="Israel")).to_be_checked()
    topics.get_by_role("checkbox", name="World").check()
    expect(status(page)).to_have_text("Notifications on for World.")
    screenshot(widget(page), "managing-topics")
    topics.get_by_role("checkbox", name="Israel").uncheck()
    expect(status(page)).to_have_text("Notifications off for Israel.")
    page.get_by_role("button", name="Done").click()

    assert notifier.topics_of(subscribed_token) == ["world"]
    expect(page.get_by_role("button", name="Get notifications")).to_be_visible()


def test_a_rotated_token_moves_the_subscription_on_the_next_visit(
    page: Page, context: BrowserContext, notifier: Notifier, firebase: FakeFirebase
) -> None:
    subscribe(page, context, notifier.url)
    [old] = firebase.issued
    # The browser's push service renews the subscription; Firebase answers with a new token.
    page.evaluate(f"localStorage.setItem({PUSH_ENDPOINT_KEY!r}, 'https://push.test/send/renewed')")

    page.reload()

    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    new = firebase.issued[-1]
    assert new != old
    assert notifier.topics_of(new) == ["israel"]
    assert notifier.topics_of(old) is None
    assert stored_token(page) == new
    assert permission_requests(page) == 0


def test_a_returning_subscriber_sees_they_are_subscribed_without_being_asked(
    page: Page, context: BrowserContext, notifier: Notifier, firebase: FakeFirebase
) -> None:
    subscribe(page, context, notifier.url)

    page.reload()

    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    expect(status(page)).to_have_text("")
    assert permission_requests(page) == 0
    assert len(firebase.issued) == 1


def test_a_keyboard_alone_subscribes_manages_and_leaves(
    page: Page, context: BrowserContext, notifier: Notifier, screenshot: Screenshot
) -> None:
    context.grant_permissions(["notifications"], origin=notifier.url)
    page.goto("/demo")
    offer = page.get_by_role("button", name="Get notifications")
    expect(offer).to_be_visible()

    for _ in range(20):  # Tab through the page's links to the widget
        page.keyboard.press("Tab")
        if offer.evaluate("button => button === document.activeElement"):
            break
    page.keyboard.press("Enter")
    manage = page.get_by_role("button", name="Manage topics")
    expect(manage).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Done")).to_be_focused()
    expect(page.get_by_role("button", name="Done")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("checkbox", name="Breaking news")).to_be_focused()
    page.keyboard.press("Space")
    expect(status(page)).to_have_text("Notifications on for Breaking news.")
    screenshot(widget(page), "keyboard-focus")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")

    expect(page.get_by_role("button", name="Get notifications")).to_be_focused()
    assert notifier.tokens() == []


def test_screen_readers_hear_a_labelled_region_with_a_live_status(
    page: Page, context: BrowserContext, notifier: Notifier
) -> None:
    page.goto("/demo")
    box = page.get_by_role("region", name="Never miss breaking news on Israel")
    expect(box).to_match_aria_snapshot(
        """
        - region "Never miss breaking news on Israel":
          - heading "Never miss breaking news on Israel" [level=2]
          - paragraph: /Get notifications to stay updated/
          - button "Get notifications"
          - status
        """
    )
    subscribe(page, context, notifier.url)
    expect(page.get_by_role("region", name="You're subscribed")).to_match_aria_snapshot(
        """
        - region "You're subscribed":
          - heading "You're subscribed" [level=2]
          - paragraph: We'll notify you when news on Israel breaks.
          - button "Manage topics" [expanded=false]
          - button "Turn off notifications"
          - status: You're subscribed to breaking news on Israel.
        """
    )


def test_a_browser_without_web_push_is_told_so_instead_of_offered_a_button(
    page: Page, context: BrowserContext, screenshot: Screenshot
) -> None:
    context.add_init_script(NO_PUSH_SUPPORT)

    page.goto("/demo")

    expect(page.get_by_role("heading", name="Notifications aren't available here")).to_be_visible()
    expect(widget(page).get_by_role("button")).to_have_count(0)
    assert permission_requests(page) == 0
    screenshot(widget(page), "unsupported")


def test_a_site_without_web_push_settings_says_so_instead_of_offering_a_button(
    page: Page, screenshot: Screenshot
) -> None:
    def without_firebase(route: Route) -> None:
        served = route.fetch()
        script = served.text()
        config = re.search(r'"firebase": \{[^}]*\}', script)
        assert config is not None
        route.fulfill(response=served, body=script.replace(config.group(0), '"firebase": null'))

    page.route("**/widget.js", without_firebase)

    page.goto("/demo")

    expect(widget(page)).to_contain_text("This site doesn't offer notifications yet.")
    expect(widget(page).get_by_role("button")).to_have_count(0)
    screenshot(widget(page), "not-configured")
