"""The editors' console: signing in, cancelling in the hold window, sending a manual alert."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack


def countdown_seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


def editor_headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.editor_key}"}


def listed_alerts(stack: Stack) -> list[dict[str, Any]]:
    body = stack.client.get("/v1/alerts", headers=editor_headers(stack)).json
    assert body is not None
    return list(body["alerts"])


def test_a_wrong_key_is_refused_and_the_right_one_kept_for_the_tab(
    stack: Stack, browsing: Browsing
) -> None:
    page = browsing.page
    browsing.open("/console")
    browsing.sign_in("ntf_deadbeef_not-a-real-key")
    expect(page.locator("#signin-message")).to_contain_text("unknown or revoked")
    expect(page.locator("#app")).to_be_hidden()
    browsing.screenshot("console-wrong-key")

    browsing.sign_in(stack.editor_key)

    expect(page.locator("#app")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('notifier.apiKey')") == stack.editor_key
    assert stack.editor_key not in page.url
    page.reload()  # the tab remembers the key: no second sign-in
    expect(page.locator("#app")).to_be_visible()


def test_an_alert_in_its_hold_window_counts_down_and_cancel_stops_it(
    stack: Stack, browsing: Browsing
) -> None:
    alert = stack.post_alert(headline="Minister resigns", hold_seconds=60)
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    item = page.locator("#hold-list li", has_text="Minister resigns")
    expect(item).to_be_visible()
    first = countdown_seconds(item.locator(".countdown").inner_text())
    time.sleep(1.6)
    later = countdown_seconds(item.locator(".countdown").inner_text())
    assert 50 <= later < first <= 60
    browsing.screenshot("console-hold-window")

    item.get_by_role("button", name="Cancel").click()

    expect(page.locator("#status")).to_contain_text(
        "Cancelled “Minister resigns”. Nothing was sent."
    )
    expect(item).to_have_count(0)
    row = page.locator("#recent-rows tr", has_text="Minister resigns")
    expect(row.locator(".badge")).to_have_text("cancelled")
    browsing.screenshot("console-after-cancel")
    assert stack.alert(alert["id"])["status"] == "cancelled"
    too_late = stack.client.post(
        f"/v1/alerts/{alert['id']}/send-now", headers=editor_headers(stack)
    )
    assert too_late.status_code == 409
    assert stack.emulator.messages() == []


def test_the_form_previews_the_alert_and_a_double_click_creates_one_alert(
    stack: Stack, browsing: Browsing
) -> None:
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    page.get_by_label("Headline").fill("Storm closes every school in the north")
    page.get_by_label("Body").fill("Classes move online until Thursday, the ministry says.")
    page.get_by_label("Article URL").fill("https://news.example/storm")
    page.get_by_label("Israel").check()
    page.get_by_role("spinbutton", name="Hold window").fill("120")
    for platform in ("android", "ios", "web"):
        preview = page.locator(f".preview-{platform}")
        expect(preview.locator(".n-title")).to_have_text("Storm closes every school in the north")
        expect(preview.locator(".n-body")).to_contain_text("Classes move online")
    expect(page.locator(".preview-web .n-origin")).to_have_text("news.example")
    page.get_by_label("Image URL").fill("https://127.0.0.1:9/storm.jpg")  # nothing listens there
    expect(page.locator(".previews")).to_contain_text("The image did not load")
    browsing.screenshot("console-compose-preview")

    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/v1/alerts")) as sent:
        page.get_by_role("button", name="Send alert").dblclick()

    expect(page.locator("#compose-message")).to_contain_text(
        re.compile(r"Created “Storm closes every school in the north”: it sends at \d\d?:\d\d:\d\d")
    )
    expect(page.locator("#hold-list li", has_text="Storm closes")).to_be_visible()
    browsing.screenshot("console-after-send")
    assert re.fullmatch(r"[0-9a-f-]{32,36}", sent.value.headers["idempotency-key"])
    listed = listed_alerts(stack)
    assert [a["headline"] for a in listed] == ["Storm closes every school in the north"]
    assert listed[0]["topics"] == ["israel"]
    assert listed[0]["status"] == "scheduled"
    assert page.get_by_label("Headline").input_value() == ""  # ready for the next alert


def test_stop_ends_a_fanout_in_progress(stack: Stack, browsing: Browsing) -> None:
    from tests.pages.test_dashboard import subscribe_audience

    subscribe_audience(stack, 3000)
    stack.emulator.faults(latency_ms=250)  # a batch then takes over a second at FCM
    stack.start_worker(concurrency=1)
    alert = stack.post_alert(headline="Storm warning upgraded")
    page = browsing.page
    browsing.open("/console", stack.editor_key)
    row = page.locator("#recent-rows tr", has_text="Storm warning upgraded")
    stop = row.get_by_role("button", name="Stop sending Storm warning upgraded")
    expect(stop).to_be_visible(timeout=20_000)

    stop.click()

    expect(page.locator("#status")).to_contain_text("Stopped “Storm warning upgraded”")
    expect(row.locator(".badge")).to_have_text("cancelled")
    stack.emulator.faults()
    time.sleep(2)
    view = stack.alert(alert["id"])
    assert view["status"] == "cancelled"
    assert view["counts"]["cancelled"] > 0
    assert len(stack.emulator.messages()) == view["counts"]["sent"] < 3000
    browsing.screenshot("console-stopped-mid-fanout")
