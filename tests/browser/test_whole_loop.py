"""The newcomer's loop in one go, on the ``make run`` stack, as README's Quick start walks it.

A reader subscribes on /demo, the CMS publishes an ordinary story, an editor flags it from the
console, the reader's browser shows it as a notification, the click counts an open, and ops see
that open on the dashboard; a reader who turned notifications off gets nothing. Every step is
done through a page or over HTTP, never by reaching into the stack's database. The smaller
steps, and what can go wrong in each, are in test_reader_loop.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.devstack import (
    IMAGE,
    DevStack,
    push_worker,
    shown,
    subscribe_on_demo,
    wait_for_notifications,
)
from tests.browser.push import CLICK, counted_link
from tests.browser.reader import permission_requests, stored_token, widget

Screenshot = Callable[[Page | Locator, str], Path]
HEADLINE = "Rocket sirens sound across the Galilee"
SUMMARY = "Residents are asked to stay near protected spaces until further notice."


def test_a_story_flagged_in_the_console_reaches_the_subscribed_reader_and_its_open_shows(
    browser: Browser, reader: BrowserContext, dev: DevStack, screenshot: Screenshot
) -> None:
    # The reader: /demo offers the seed's opt-in and asks nothing until the click.
    page = reader.new_page()
    page.goto("/demo")
    offer = widget(page).get_by_role("heading", name="Never miss breaking news on Israel")
    expect(offer).to_be_visible()
    expect(widget(page).get_by_role("button", name="Get notifications")).to_be_visible()
    assert permission_requests(page) == 0
    page.close()
    page = subscribe_on_demo(reader, dev)
    token = stored_token(page)
    assert token is not None and dev.topics_of(token) == ["israel"]
    screenshot(page, "demo-subscribed")

    # Another reader subscribed, then turned notifications off.
    leaver_profile = browser.new_context(base_url=dev.api, locale="en-GB")
    leaver = subscribe_on_demo(leaver_profile, dev)
    left_token = stored_token(leaver)
    leaver.get_by_role("button", name="Turn off notifications").click()
    expect(widget(leaver).get_by_role("button", name="Get notifications")).to_be_visible()
    assert left_token is not None and dev.topics_of(left_token) is None

    # The CMS publishes the story as ordinary news: no alert.
    published = dev.publish_article(headline=HEADLINE, summary=SUMMARY)
    article = published["article"]
    listed = dev.call("GET", f"{dev.api}/v1/articles", key=True)["articles"]
    [stored] = [a for a in listed if a["id"] == article["id"]]
    assert stored["alert"] is None

    # An editor sees it is breaking and flags it from the console, with no hold window.
    editor = browser.new_context(base_url=dev.api, viewport={"width": 1360, "height": 900})
    console = editor.new_page()
    console.goto("/console")
    console.locator("#api-key").fill(dev.editor_key)
    console.get_by_role("button", name="Sign in").click()
    row = console.locator("#article-list li", has_text=HEADLINE)
    row.get_by_role("button", name=f"Send as breaking: {HEADLINE}").click()
    assert console.get_by_label("Headline").input_value() == HEADLINE
    console.get_by_role("spinbutton", name="Hold window").fill("0")
    screenshot(console, "console-flagging")
    flag_url = f"{dev.api}/v1/articles/{article['id']}/alert"
    with console.expect_response(lambda r: r.url == flag_url) as flagged:
        console.get_by_role("button", name="Send as breaking", exact=True).click()
    assert flagged.value.status == 201
    alert_id = flagged.value.json()["id"]
    expect(console.locator("#compose-message")).to_contain_text(f"Created “{HEADLINE}”: sending")

    # The subscribed reader's browser shows it; the emulator's inbox lists it too.
    [note] = wait_for_notifications(page)
    assert (note["title"], note["body"], note["tag"], note["image"]) == (
        HEADLINE,
        SUMMARY,
        alert_id,
        IMAGE,
    )
    assert [m["display"]["title"] for m in dev.inbox_for(token)] == [HEADLINE]
    inbox = editor.new_page()
    inbox.goto(dev.emulator + "/")
    expect(inbox.get_by_text(HEADLINE).first).to_be_visible()
    screenshot(inbox, "notification-shown-in-the-emulator-inbox")

    # A click goes through /o/{alert} to the article and counts one open.
    clicked = push_worker(reader, dev).evaluate(CLICK)
    assert clicked == {"opened": [counted_link(dev.api, alert_id, article["url"])], "left": 0}
    opened = reader.new_page()
    opened.goto(clicked["opened"][0])
    assert opened.url == article["url"]
    assert dev.alert(alert_id)["opens"] == 1

    # Ops (the dev key is admin) see the open on the dashboard, from the console's own tab.
    console.get_by_role("link", name="Dashboard").click()
    recent = console.locator("#recent-rows tr", has_text=HEADLINE)
    expect(recent.locator(".n-opens")).to_have_text("1")
    expect(recent.locator(".n-sent")).not_to_have_text("0")
    screenshot(console, "dashboard-with-the-open")

    # The reader who turned notifications off got nothing, in the browser or at the emulator.
    assert shown(leaver) == []
    assert dev.inbox_for(left_token) == []
    leaver_profile.close()
    editor.close()
