"""Both pages show each alert's delivery percentiles once FCM has accepted its devices."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from tests.pages.conftest import Browsing, sent_alert, subscribe_readers
from tests.pipeline.conftest import Stack

# "p50 0.12 s · p90 0.30 s · p99 0.30 s": every figure a duration the page wrote.
PERCENTILES = re.compile(r"p50 [\d.]+ s · p90 [\d.]+ s · p99 [\d.]+ s")
SHOTS = Path("/tmp/shots")


def keep(path: Path) -> None:
    """Copy a screenshot where reviewers look at them, beside the test artifacts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_console_and_dashboard_show_a_sent_alerts_delivery_times(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    subscribe_readers(stack, "latency-page", 4)
    stack.start_worker(concurrency=1)
    waiting = stack.post_alert(headline="Still in its hold window", hold_seconds=3600)
    sent_alert(stack, "Results are in", audience=4)

    browsing.open("/console", stack.editor_key)
    row = browsing.page.locator("#recent-rows tr", has_text="Results are in")
    expect(row.locator(".latency")).to_have_text(
        re.compile(rf"^Delivered in {PERCENTILES.pattern} · 100% within 2 min$")
    )
    # Nothing accepted yet: no figures rather than zeros.
    held = browsing.page.locator("#recent-rows tr", has_text=waiting["headline"])
    expect(held.locator(".counts")).to_be_visible()
    expect(held.locator(".latency")).to_be_hidden()
    keep(browsing.screenshot("console-delivery-latency"))

    browsing.open("/dashboard", ops_key)
    row = browsing.page.locator("#recent-rows tr", has_text="Results are in")
    expect(row.locator(".latency-text")).to_have_text(re.compile(rf"^{PERCENTILES.pattern}$"))
    expect(row.locator(".n-within")).to_have_text("100.0%")
    # The strip: p50 to p99 well inside the two minutes, so not marked late.
    strip = row.locator(".latency-strip svg")
    expect(strip).to_have_attribute("aria-label", re.compile(r"100% within 2 min$"))
    assert strip.locator("rect.strip-range:not(.late)").count() == 1
    p90 = float(strip.locator(".strip-p90").get_attribute("data-value") or "nan")
    assert float(strip.locator(".strip-range").get_attribute("data-to") or "nan") >= p90
    keep(browsing.screenshot("dashboard-delivery-latency"))
