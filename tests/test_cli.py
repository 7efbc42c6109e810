"""The ``notifier`` command: migrations, configuration errors, and serving under gunicorn."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from notifier.cli.main import main
from notifier.core import migrate
from notifier.core.db import make_engine
from tests.factories import subscription
from tests.support import free_port, notifier_process, stop, wait_for_http


def test_db_upgrade_then_current_reports_the_latest_revision(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    migrate.downgrade(engine, "base")
    runner = CliRunner()
    env = {"NOTIFIER_DATABASE_URL": db_url, "NOTIFIER_DATA_DIR": str(tmp_path)}
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database at {migrate.head_revision(engine)}" in upgraded.output
    current = runner.invoke(main, ["db", "current"], env=env)
    assert current.output.startswith(migrate.head_revision(engine) or "?")
    engine.dispose()


def test_a_bad_setting_exits_2_naming_it() -> None:
    result = CliRunner().invoke(main, ["db", "current"], env={"NOTIFIER_PORT": "http"})
    assert result.exit_code == 2
    assert "NOTIFIER_PORT" in result.output


def test_api_serves_subscriptions_under_gunicorn_on_sqlite(tmp_path: Path) -> None:
    port = free_port()
    proc = notifier_process(
        ["api", "--workers", "1"],
        {"NOTIFIER_PORT": str(port), "NOTIFIER_DATA_DIR": str(tmp_path / "var")},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/livez", proc)
        request = urllib.request.Request(
            f"{base}/v1/subscriptions",
            data=json.dumps(subscription(topics=["israel"])).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
            assert json.load(response)["topics"] == ["israel"]
    finally:
        output = stop(proc)
    assert (tmp_path / "var" / "notifier.db").exists()
    assert "APA91b" not in output  # tokens never reach the logs


def test_fcm_emulator_command_serves_firebase_admins_endpoints(tmp_path: Path) -> None:
    port = free_port()
    proc = notifier_process(
        ["fcm-emulator", "--port", str(port)], {"NOTIFIER_DATA_DIR": str(tmp_path)}
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/emulator/stats", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200
            assert "text/html" in response.headers["Content-Type"]
    finally:
        stop(proc)


def test_status_prints_queues_and_alerts(db_url: str, tmp_path: Path) -> None:
    env = {"NOTIFIER_DATABASE_URL": db_url, "NOTIFIER_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert "QUEUES (filesystem)" in result.output
    assert "breaking" in result.output and "SWEEPER last run never" in result.output
    as_json = CliRunner().invoke(main, ["status", "--json"], env=env)
    assert json.loads(as_json.output)["alerts_by_status"] == {}
