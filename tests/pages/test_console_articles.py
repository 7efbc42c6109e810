"""Editors flag a story from the console: the CMS's ordinary article becomes a held alert.

The article arrives as the CMS sends it (a signed webhook), the editor opens it in the composer
from "Recent articles", edits it, and sends; the alert is held with its countdown and linked to
the article, whose row then shows the alert instead of the button.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import signed_event
from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """The pipeline, accepting the test CMS's signature."""
    return stack_factory(webhook_secrets=SECRET)


def publish(stack: Stack, **data: Any) -> dict[str, Any]:
    """``article.published`` as the CMS sends it, signed."""
    article = {
        "id": f"story-{uuid.uuid4().hex[:8]}",
        "url": "https://news.example/2026/12/quake",
        "headline": "Earthquake shakes the north",
        "summary": "Buildings evacuated in Haifa; no injuries reported so far.",
        "image_url": "https://127.0.0.1:9/quake.jpg",
        "topics": ["israel"],
        "breaking": False,
        "published_at": "2026-12-02T05:30:00Z",
        **data,
    }
    body, headers = signed_event(SECRET, "article.published", article)
    response = stack.client.post("/v1/events", data=body, headers=headers)
    assert response.status_code in (200, 202), response.json
    return article


def test_an_editor_sends_an_ordinary_article_as_breaking_and_it_is_held(
    stack: Stack, browsing: Browsing
) -> None:
    article = publish(stack)
    alerted = publish(stack, headline="Already breaking", breaking=True)
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    row = page.locator("#article-list li", has_text="Earthquake shakes the north")
    expect(row.locator(".article-meta")).to_contain_text("israel")
    other = page.locator("#article-list li", has_text=alerted["headline"])
    expect(other.locator(".badge")).to_have_text("alert scheduled")
    expect(other.get_by_role("button")).to_be_hidden()  # one alert per article
    browsing.screenshot("console-recent-articles")

    # Keyboard only: focus the button and press Enter, as an editor without a mouse would.
    row.get_by_role("button", name="Send as breaking: Earthquake shakes the north").focus()
    page.keyboard.press("Enter")

    expect(page.locator("#compose-title")).to_have_text("Send a story as breaking")
    expect(page.get_by_label("Headline")).to_be_focused()
    assert page.get_by_label("Headline").input_value() == "Earthquake shakes the north"
    assert page.get_by_label("Article URL").input_value() == article["url"]
    assert page.get_by_label("Image URL").input_value() == article["image_url"]
    assert page.get_by_label("Israel").is_checked() and not page.get_by_label("World").is_checked()
    page.get_by_label("Headline").fill("Earthquake shakes the north: buildings evacuated")
    page.get_by_role("spinbutton", name="Hold window").fill("120")
    expect(page.locator(".preview-android .n-title")).to_have_text(
        "Earthquake shakes the north: buildings evacuated"
    )
    browsing.screenshot("console-article-in-composer")

    with page.expect_request(lambda r: r.method == "POST" and "/v1/articles/" in r.url) as sent:
        page.get_by_role("button", name="Send as breaking", exact=True).dblclick()

    expect(page.locator("#compose-message")).to_contain_text(
        re.compile(r"Created “Earthquake shakes the north: buildings evacuated”: it sends at")
    )
    held = page.locator("#hold-list li", has_text="buildings evacuated")
    expect(held.locator(".countdown")).to_have_text(re.compile(r"^(2:00|1:[0-5]\d)$"))
    expect(row.locator(".badge")).to_have_text("alert scheduled")
    expect(row.get_by_role("button")).to_be_hidden()
    expect(page.locator("#compose-title")).to_have_text("Send a manual alert")
    browsing.screenshot("console-article-held")

    assert sent.value.url.endswith(f"/v1/articles/{article['id']}/alert")
    assert sent.value.headers["idempotency-key"]
    listed = stack.client.get(
        "/v1/alerts", headers={"Authorization": f"Bearer {stack.editor_key}"}
    ).json
    assert listed is not None
    mine = [a for a in listed["alerts"] if a["article_id"] == article["id"]]
    assert len(mine) == 1  # the double click made one alert
    assert mine[0]["headline"] == "Earthquake shakes the north: buildings evacuated"
    assert (mine[0]["source"], mine[0]["status"], mine[0]["topics"]) == (
        "editor",
        "scheduled",
        ["israel"],
    )
    assert mine[0]["hold_seconds"] == 120


def test_a_headline_from_the_cms_is_shown_as_text(stack: Stack, browsing: Browsing) -> None:
    publish(stack, headline='<img src=x id="injected"> Markup in a headline')
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    row = page.locator("#article-list li", has_text="Markup in a headline")
    expect(row.locator(".headline")).to_have_text('<img src=x id="injected"> Markup in a headline')
    assert page.locator("#injected").count() == 0
    row.get_by_role("button").click()
    expect(page.locator("#from-article-headline")).to_contain_text("<img src=x")
    assert page.locator("#injected").count() == 0
    page.get_by_role("button", name="Back to a manual alert").click()
    expect(page.locator("#compose-title")).to_have_text("Send a manual alert")
    assert page.locator("#f-headline").input_value() == ""


def test_an_ops_key_is_told_articles_are_for_editors_and_keeps_the_console(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    publish(stack, headline="Not for ops to flag")
    stack.post_alert(headline="Watched by ops", hold_seconds=600)
    page = browsing.page
    browsing.open("/console", ops_key)
    expect(page.locator("#articles-message")).to_have_text(
        "Articles are listed for editor keys only."
    )
    expect(page.locator("#hold-list li", has_text="Watched by ops")).to_be_visible()
    expect(page.locator("#article-list li")).to_have_count(0)
    expect(page.locator("#app")).to_be_visible()  # a 403 on articles does not sign out
    browsing.screenshot("console-articles-ops-key")
