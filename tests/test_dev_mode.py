"""``make run`` (``notifier dev``): the whole pipeline on one machine, no PostgreSQL or Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support import run_notifier_dev


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_a_signed_event_lands_in_the_emulator_inbox_in_embedded_mode(tmp_path: Path) -> None:
    with run_notifier_dev(tmp_path, ready="editor API key") as dev:
        banner = dev.log.read_text()
        assert f"API             {dev.api}" in banner
        assert "webhook secret  whsec_" in banner
        # Where a newcomer sees the open a notification's click counted.
        assert f"'Recent alerts' on the\ndashboard ({dev.api}/dashboard, Opens" in banner

        post_json(
            f"{dev.api}/v1/subscriptions",
            {"token": "demo-device-0001", "platform": "android", "topics": ["israel"]},
        )
        sent = subprocess.run(
            [sys.executable, "-m", "notifier", "send-test-event", "--topic", "israel"],
            env=dev.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("202 ")

        deadline = time.monotonic() + 20
        messages: list = []
        while not messages and time.monotonic() < deadline:
            with urllib.request.urlopen(f"{dev.emulator}/emulator/messages", timeout=5) as response:
                messages = json.load(response)["messages"]
            time.sleep(0.1)
        assert [m["token"] for m in messages] == ["demo-device-0001"]
        assert (tmp_path / "var" / "notifier.db").exists()
        assert list((tmp_path / "var" / "broker").iterdir())
