"""The console's urgent alerts, translations side by side and per-language counts, in Chromium."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.pages import test_console_articles as articles
from tests.pages.conftest import ARTIFACTS, Browsing
from tests.pipeline.conftest import Stack


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """The pipeline, accepting the test CMS's signature (for the article sent as breaking)."""
    return stack_factory(webhook_secrets=articles.SECRET)


def fill_original(page: Page, headline: str) -> None:
    page.locator("#f-headline").fill(headline)
    page.locator("#f-body").fill("Schools stay closed on Thursday.")
    page.locator("#f-url").fill("https://news.example/storm")
    page.get_by_label("Israel").check()
    page.locator("#f-hold").fill("600")


def add_translation(page: Page, tag: str, headline: str, body: str, url: str = "") -> None:
    page.locator("#f-add-lang").fill(tag)
    page.locator("#f-add-lang").press("Enter")
    block = page.locator(f'.translation[data-tag="{tag}"]')
    block.locator('[data-field="headline"]').fill(headline)
    block.locator('[data-field="body"]').fill(body)
    if url:
        block.locator('[data-field="url"]').fill(url)


def test_an_urgent_alert_with_french_and_hebrew_asks_first_then_sends_every_translation(
    stack: Stack, browsing: Browsing
) -> None:
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    fill_original(page, "Storm closes every school")
    page.locator("#f-urgent").check()
    add_translation(
        page, "fr", "La tempête ferme les écoles", "Fermées jeudi.", "https://news.example/fr"
    )
    add_translation(page, "he", "הסערה סוגרת את בתי הספר", "סגורים ביום חמישי.")
    page.locator("#f-locales").fill("fr, he")

    hebrew = page.locator('.translation-preview[data-tag="he"]')
    expect(hebrew.locator(".previews")).to_have_attribute("dir", "rtl")
    expect(hebrew.locator(".preview-android .n-title")).to_have_text("הסערה סוגרת את בתי הספר")
    title_direction = hebrew.locator(".preview-ios .n-title").evaluate(
        "node => getComputedStyle(node).direction"
    )
    assert title_direction == "rtl"
    french = page.locator('.translation-preview[data-tag="fr"]')
    expect(french.locator(".previews")).to_have_attribute("dir", "ltr")
    expect(french.locator(".preview-web .n-title")).to_have_text("La tempête ferme les écoles")
    expect(french.locator(".preview-web .n-origin")).to_have_text("news.example")
    original = page.locator('.translation[data-tag="he"] .original-text')
    expect(original).to_contain_text("Storm closes every school")  # side by side
    expect(page.locator('.translation[data-tag="he"] [data-field="headline"]')).to_have_attribute(
        "dir", "rtl"
    )

    page.get_by_role("button", name="Send alert").click()

    confirm = page.locator("#urgent-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("quiet hours")
    expect(confirm).to_contain_text("already had their alerts for the day")
    time.sleep(0.5)
    assert stack.client.get("/v1/alerts", headers=editor(stack)).json["alerts"] == []
    browsing.screenshot("console-urgent-confirm")
    hebrew.scroll_into_view_if_needed()
    hebrew.screenshot(path=str(ARTIFACTS / "console-hebrew-preview.png"))

    page.get_by_role("button", name="Send urgent alert").click()

    expect(page.locator("#compose-message")).to_contain_text(
        "Created an urgent alert, “Storm closes every school”"
    )
    held = page.locator("#hold-list li", has_text="Storm closes every school")
    expect(held.locator(".urgent-flag")).to_be_visible()
    expect(held).to_contain_text("in en + fr + he · only fr, he readers")
    expect(page.locator(".translation")).to_have_count(0)  # the form is ready for the next one
    listed = stack.client.get("/v1/alerts", headers=editor(stack)).json["alerts"]
    assert len(listed) == 1
    stored = stack.alert(listed[0]["id"])
    assert stored["urgency"] == "urgent"
    assert stored["locale"] == "en"
    assert stored["locales"] == ["fr", "he"]
    assert stored["translations"] == {
        "fr": {
            "headline": "La tempête ferme les écoles",
            "body": "Fermées jeudi.",
            "url": "https://news.example/fr",
        },
        "he": {"headline": "הסערה סוגרת את בתי הספר", "body": "סגורים ביום חמישי."},
    }
    browsing.screenshot("console-urgent-sent")


def test_going_back_from_the_confirmation_sends_nothing(stack: Stack, browsing: Browsing) -> None:
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    fill_original(page, "Minister resigns")
    page.locator("#f-urgent").check()
    page.get_by_role("button", name="Send alert").click()
    expect(page.locator("#urgent-confirm")).to_be_visible()

    page.get_by_role("button", name="Go back").click()

    expect(page.locator("#urgent-confirm")).to_be_hidden()
    time.sleep(0.5)
    assert stack.client.get("/v1/alerts", headers=editor(stack)).json["alerts"] == []


def test_a_malformed_or_repeated_language_tag_is_refused_before_anything_is_sent(
    stack: Stack, browsing: Browsing
) -> None:
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    for typed, said in (
        ("x", "“x” is not a language tag"),
        ("under_score", "is not a language tag"),
        ("en", "is the language of the text above"),
    ):
        page.locator("#f-add-lang").fill(typed)
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator("#lang-message")).to_contain_text(said)
    expect(page.locator(".translation")).to_have_count(0)
    page.locator("#f-add-lang").fill("fr")
    page.get_by_role("button", name="Add", exact=True).click()
    page.locator("#f-add-lang").fill("FR")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#lang-message")).to_contain_text("There is a French (fr) translation")
    expect(page.locator(".translation")).to_have_count(1)

    fill_original(page, "Storm closes every school")
    page.locator("#f-locales").fill("fr, 1x")
    page.get_by_role("button", name="Send alert").click()
    expect(page.locator("#compose-message")).to_contain_text("Write the French (fr) headline")
    page.locator('.translation[data-tag="fr"] [data-field="headline"]').fill("Tempête")
    page.get_by_role("button", name="Send alert").click()
    expect(page.locator("#compose-message")).to_contain_text("“1x” is not a language tag")
    assert stack.client.get("/v1/alerts", headers=editor(stack)).json["alerts"] == []


def test_per_language_counts_appear_under_a_sent_alert(stack: Stack, browsing: Browsing) -> None:
    devices = [("fr-1", "fr-FR"), ("fr-2", "fr"), ("he-1", "he-IL"), ("xx-1", None)]
    for token, locale in devices:
        body = {"token": f"{token}-APA91b{'x' * 20}", "platform": "android", "topics": ["israel"]}
        if locale:
            body["locale"] = locale
        response = stack.client.post("/v1/subscriptions", json=body)
        assert response.status_code in (200, 201), response.json
    stack.start_worker(concurrency=1)
    alert = stack.post_alert(
        headline="Ceasefire announced",
        hold_seconds=0,
        translations={"fr": {"headline": "Cessez-le-feu"}, "he": {"headline": "הפסקת אש"}},
    )
    stack.wait_for_status(alert["id"], ("sent",))
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    row = page.locator("#recent-rows tr", has_text="Ceasefire announced")
    expect(row).to_contain_text("in en + fr + he")

    row.locator(".by-locale summary").click()

    table = row.locator(".by-locale-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    french = table.locator('tr[data-language="fr"]')
    expect(french.locator("th")).to_have_text("French (fr)")
    expect(french.locator('[data-count="sent"]')).to_have_text("2")
    expect(table.locator('tr[data-language="he"] [data-count="sent"]')).to_have_text("1")
    expect(table.locator('tr[data-language="en"] [data-count="sent"]')).to_have_text("1")
    expect(table.locator("tbody tr").first).to_have_attribute("data-language", "fr")
    by_locale = stack.alert(alert["id"])["by_locale"]
    assert {language: c["sent"] for language, c in by_locale.items()} == {"fr": 2, "he": 1, "en": 1}
    row.scroll_into_view_if_needed()
    browsing.screenshot("console-per-language-counts")


def test_an_article_sent_as_breaking_can_be_urgent_and_translated(
    stack: Stack, browsing: Browsing
) -> None:
    story = articles.publish(stack, headline="Earthquake shakes the north")
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    page.get_by_role("button", name="Send as breaking: Earthquake shakes the north").click()
    expect(page.locator("#f-headline")).to_have_value("Earthquake shakes the north")
    page.locator("#f-urgent").check()
    add_translation(page, "ar", "زلزال يهز الشمال", "إخلاء المباني في حيفا.")
    expect(page.locator('.translation-preview[data-tag="ar"] .previews')).to_have_attribute(
        "dir", "rtl"
    )

    page.locator("#send").click()
    page.get_by_role("button", name="Send urgent alert").click()

    expect(page.locator("#compose-message")).to_contain_text("Created an urgent alert")
    listed = stack.client.get("/v1/alerts", headers=editor(stack)).json["alerts"]
    assert [a["article_id"] for a in listed] == [story["id"]]
    assert listed[0]["urgency"] == "urgent"
    assert listed[0]["translations"] == {
        "ar": {"headline": "زلزال يهز الشمال", "body": "إخلاء المباني في حيفا."}
    }


def editor(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.editor_key}"}
