"""The console shows a sent alert's counts per app in a deployment of several, in Chromium."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack
from tests.pipeline.test_apps import FR, _subscribe, _two_app_stack


@pytest.fixture
def stack(stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str) -> Stack:
    """Two apps, en and fr, with service accounts of their own; fr's get one attempt."""
    return _two_app_stack(stack_factory, tmp_path, emulator, max_send_attempts="1")


def test_per_app_counts_show_which_app_failed(
    stack: Stack, browsing: Browsing, tmp_path: Path
) -> None:
    _subscribe(stack, "en", 3, "console")
    _subscribe(stack, FR, 2, "console")
    fr_account = json.loads((tmp_path / "apps" / "fr.json").read_text())["client_email"]
    stack.emulator._call("POST", "/emulator/oauth/revoked", {"accounts": [fr_account]})
    stack.start_worker(concurrency=1)
    alert = stack.post_alert(headline="Two apps, one revoked", hold_seconds=0)
    stack.wait_for_status(alert["id"], timeout=90)

    browsing.open("/console", stack.editor_key)
    row = browsing.page.locator("#recent-rows tr", has_text="Two apps, one revoked")
    row.locator(".by-locale summary").click()

    table = row.locator(".by-app-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator('tr[data-app="en"] [data-count="sent"]')).to_have_text("3")
    expect(table.locator('tr[data-app="fr"] [data-count="sent"]')).to_have_text("0")
    expect(table.locator('tr[data-app="fr"] [data-count="failed"]')).to_have_text("2")
    row.scroll_into_view_if_needed()
    browsing.screenshot("console-per-app-counts")

    with transaction(stack.runtime.sessions) as session:
        admin, _ = create_key(session, "admin", "dashboard")
    browsing.open("/dashboard", admin)
    recent = browsing.page.locator("#recent-rows tr", has_text="Two apps, one revoked")
    expect(recent.locator(".meta")).to_contain_text("en 3 · fr 2")
    browsing.screenshot("dashboard-audience-per-app")
