"""The ops dashboard: only for ops keys, a live alert's progress, and the last hour's charts."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from notifier.subscriptions.bulk_import import import_devices
from tests.pages.conftest import Browsing, sent_alert, subscribe_readers
from tests.pipeline.conftest import Stack, subscribe

AUDIENCE = 3000  # six batches of 500, sent one after the other by a single worker process


def subscribe_audience(stack: Stack, count: int) -> None:
    """``count`` Android devices on "israel", imported in bulk (seconds faster than one by one)."""
    lines = (
        json.dumps(
            {"token": f"dash-{i:06d}-APA91b{'x' * 20}", "platform": "android", "topics": ["israel"]}
        ).encode()
        for i in range(count)
    )
    report = import_devices(stack.runtime.engine, lines)
    assert report.imported == count, report


def in_flight_progress(browsing: Browsing, headline: str) -> float | None:
    """The value of the alert's progress bar on the page, or None while it is not shown."""
    bar = browsing.page.locator("#flight-rows tr", has_text=headline).locator("progress")
    return float(bar.evaluate("bar => bar.value")) if bar.count() else None


def test_an_editor_key_or_a_wrong_key_is_told_why_it_cannot_see_the_dashboard(
    stack: Stack, browsing: Browsing
) -> None:
    page = browsing.page
    browsing.open("/dashboard")

    browsing.sign_in("ntf_deadbeef_not-a-real-key")
    expect(page.locator("#signin-message")).to_contain_text("unknown or revoked")
    browsing.sign_in(stack.editor_key)
    expect(page.locator("#signin-message")).to_contain_text("needs a key with role ops")

    expect(page.locator("#app")).to_be_hidden()
    browsing.screenshot("dashboard-editor-key")


def test_the_dashboard_follows_a_live_alert_and_charts_what_was_sent(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    subscribe_audience(stack, AUDIENCE - 2)
    subscribe(stack, "unregistered-dash-01", ["israel"])
    subscribe(stack, "unregistered-dash-02", ["israel"])
    stack.emulator.faults(latency_ms=250)  # a batch then takes over a second at FCM
    stack.start_worker(concurrency=1)
    stack.sweep()  # as beat would: the sweeper tile shows a recent run
    browsing.open("/dashboard", ops_key)
    page = browsing.page
    worker = page.locator("#workers li").first
    expect(worker).to_be_visible(timeout=15_000)

    alert = stack.post_alert(headline="Ceasefire announced", hold_seconds=0)

    seen: list[float] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(0 < p < 1 for p in seen):
        progress = in_flight_progress(browsing, "Ceasefire announced")
        if progress is not None:
            seen.append(progress)
        time.sleep(0.2)
    assert any(0 < p < 1 for p in seen), f"never saw the alert half-way: {seen}"
    expect(worker).to_contain_text("notifier.")  # the worker shows the task it runs
    browsing.screenshot("dashboard-in-flight")

    assert stack.wait_for_status(alert["id"], timeout=60)["status"] == "sent"
    expect(page.locator("#flight-empty")).to_be_visible(timeout=10_000)
    sent_bars = page.locator("#throughput-chart rect.bar-sent")
    expect(sent_bars.first).to_be_attached(timeout=10_000)
    page.wait_for_function(
        "total => [...document.querySelectorAll('#throughput-chart rect.bar-sent')]"
        ".reduce((sum, bar) => sum + Number(bar.dataset.value), 0) === total",
        arg=AUDIENCE - 2,
        timeout=10_000,
    )
    pruned = page.locator("#throughput-chart rect.bar-pruned")
    assert sum(int(v) for v in pruned.evaluate_all("bars => bars.map(b => b.dataset.value)")) == 2
    expect(page.locator("#error-chart circle.point").first).to_be_attached()
    expect(page.locator("#statuses")).to_contain_text("sent 1")
    browsing.screenshot("dashboard-after-send")


def test_recent_alerts_show_a_finished_alerts_opens_as_readers_click(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    subscribe_readers(stack, "recent-dash", 3)
    stack.start_worker(concurrency=1)
    alert = sent_alert(stack, "Polls close in the north", audience=3)
    browsing.open("/dashboard", ops_key)
    row = browsing.page.locator("#recent-rows tr", has_text="Polls close in the north")
    expect(row.locator(".badge")).to_have_text("sent")
    expect(row.locator(".n-sent")).to_have_text("3")
    expect(row.locator(".n-opens")).to_have_text("0")
    expect(row.locator(".n-open-rate")).to_have_text("0.0%")
    expect(browsing.page.locator("#recent-empty")).to_be_hidden()

    for _ in range(2):  # two readers click the notification: GET /o/{alert}, as the browser does
        assert stack.client.get(f"/o/{alert['id']}").status_code == 302

    # The page refreshes itself: no reload.
    expect(row.locator(".n-opens")).to_have_text("2")
    expect(row.locator(".n-open-rate")).to_have_text("66.7%")
    expect(browsing.page.locator("#flight-empty")).to_be_visible()
    browsing.screenshot("dashboard-recent-alerts-opens")
