"""``make run`` (``notifier dev``): the whole pipeline on one machine, no PostgreSQL or Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support import free_port, wait_for_http


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_a_signed_event_lands_in_the_emulator_inbox_in_embedded_mode(tmp_path: Path) -> None:
    api_port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_DATA_DIR=str(tmp_path / "var"),
        NOTIFIER_PORT=str(api_port),
        NOTIFIER_EMULATOR_PORT=str(emulator_port),
    )
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "notifier", "dev"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{api_port}"
    emulator = f"http://127.0.0.1:{emulator_port}"
    try:
        wait_for_http(f"{api}/livez", timeout=60)
        deadline = time.monotonic() + 30
        while "editor API key" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        banner = log.read_text()
        assert f"API             {api}" in banner
        assert "webhook secret  whsec_" in banner
        # Where a newcomer sees the open a notification's click counted.
        assert f"'Recent alerts' on the\ndashboard ({api}/dashboard, Opens" in banner

        post_json(
            f"{api}/v1/subscriptions",
            {"token": "demo-device-0001", "platform": "android", "topics": ["israel"]},
        )
        sent = subprocess.run(
            [sys.executable, "-m", "notifier", "send-test-event", "--topic", "israel"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("202 ")

        deadline = time.monotonic() + 20
        messages: list = []
        while not messages and time.monotonic() < deadline:
            with urllib.request.urlopen(f"{emulator}/emulator/messages", timeout=5) as response:
                messages = json.load(response)["messages"]
            time.sleep(0.1)
        assert [m["token"] for m in messages] == ["demo-device-0001"]
        assert (tmp_path / "var" / "notifier.db").exists()
        assert list((tmp_path / "var" / "broker").iterdir())
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
