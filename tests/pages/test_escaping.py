"""A headline is text on every page: markup in it is shown, never parsed or run."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.pipeline.planner import plan_slice
from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack, subscribe

HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("script:not([src])").count() == 0


def editor(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.editor_key}"}


def test_a_headline_with_markup_is_shown_as_text_on_the_console_and_the_dashboard(
    stack: Stack, browsing: Browsing
) -> None:
    with transaction(stack.runtime.sessions) as session:
        admin_key, _ = create_key(session, "admin", "escaping test")
    subscribe(stack, "escaping-device-0001-APA91bxxxxxxxxxxxxxxxxxxxx", ["israel"])
    stack.post_alert(headline=HOSTILE, hold_seconds=600)
    in_flight = stack.post_alert(headline=HOSTILE, hold_seconds=0)
    plan_slice(stack.runtime.sessions, in_flight["id"])  # as the planner would: now sending
    page = browsing.page

    browsing.open("/console", admin_key)
    expect(page.locator("#hold-list .headline")).to_have_text(HOSTILE)
    expect(page.locator("#recent-rows .headline")).to_have_text([HOSTILE, HOSTILE])
    page.get_by_label("Headline").fill(HOSTILE)
    expect(page.locator(".previews .n-title")).to_have_text([HOSTILE] * 3)
    assert_nothing_ran(page)
    browsing.screenshot("console-escaped-headline")

    held = stack.client.get("/v1/alerts?status=scheduled", headers=editor(stack)).json["alerts"]
    cancelled = stack.client.post(f"/v1/alerts/{held[0]['id']}/cancel", headers=editor(stack))
    assert cancelled.status_code == 200  # finished: listed under the dashboard's recent alerts
    page.get_by_role("link", name="Dashboard").click()  # the key stays with the tab

    expect(page.locator("#flight-rows .headline")).to_have_text(HOSTILE)
    expect(page.locator("#recent-rows .headline")).to_have_text(HOSTILE)
    assert_nothing_ran(page)
    browsing.screenshot("dashboard-escaped-headline")
