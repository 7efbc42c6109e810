"""The console and the dashboard show what readers' preferences did: suppressed, silent."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import update

from notifier.core.db import transaction
from notifier.core.models import Alert
from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack


def join(stack: Stack, token: str, **preferences: object) -> None:
    body = {"token": token, "platform": "android", "topics": ["israel"], **preferences}
    assert stack.client.post("/v1/subscriptions", json=body).status_code in (200, 201)


def test_the_console_says_how_many_devices_readers_settings_held_back(
    stack: Stack, browsing: Browsing
) -> None:
    join(stack, "plain-reader-0001")
    join(stack, "capped-reader-0001", max_per_day=1)
    join(
        stack,
        "all-day-quiet-0001",
        timezone="UTC",
        quiet_hours={"start": "00:00", "end": "23:59", "mode": "silent"},
    )
    stack.start_worker()
    stack.wait_for_status(stack.post_alert(headline="First of the day")["id"])
    stack.wait_for_status(stack.post_alert(headline="Second of the day")["id"])

    browsing.open("/console", stack.editor_key)

    row = browsing.page.locator("#recent-rows tr", has_text="Second of the day")
    expect(row.locator(".counts")).to_contain_text("1 held back by readers' settings")
    expect(row.locator(".counts")).to_contain_text("1 of them silently")
    browsing.screenshot("console-preference-counts")


def test_the_dashboard_shows_suppressed_devices_of_an_alert_in_flight(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    alert = stack.post_alert(headline="Evening briefing", hold_seconds=3600)
    with transaction(stack.runtime.sessions) as session:
        session.execute(
            update(Alert)
            .where(Alert.id == alert["id"])
            .values(status="sending", audience=40, sent=20, suppressed=12, silent=5)
        )

    browsing.open("/dashboard", ops_key)

    row = browsing.page.locator("#flight-rows tr", has_text="Evening briefing")
    expect(row.locator(".suppressed")).to_have_text("12")
    expect(row.locator(".done")).to_contain_text("32 of 40")
    browsing.screenshot("dashboard-preference-counts")
