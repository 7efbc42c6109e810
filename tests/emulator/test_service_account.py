"""The service-account helper lets firebase-admin run its real credentials code offline."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import google.auth.transport.requests
from firebase_admin import credentials

from notifier.emulator import ensure_service_account, write_service_account


def test_firebase_admin_gets_a_token_from_the_emulator(emulator: str, tmp_path: Path) -> None:
    path = write_service_account(
        tmp_path / "sa.json", project_id="p-offline", token_uri=f"{emulator}/token"
    )
    certificate = credentials.Certificate(str(path))
    assert certificate.project_id == "p-offline"
    google_credential = certificate.get_credential()
    google_credential.refresh(google.auth.transport.requests.Request())
    assert google_credential.valid
    assert google_credential.token.startswith("ya29.")


def test_written_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = write_service_account(tmp_path / "sa.json", project_id="p", token_uri="http://x/token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["type"] == "service_account"


def test_ensure_reuses_a_matching_file(tmp_path: Path) -> None:
    path = write_service_account(tmp_path / "sa.json", project_id="p", token_uri="http://x/token")
    key = json.loads(path.read_text())["private_key"]
    ensure_service_account(path, project_id="p", token_uri="http://x/token")
    assert json.loads(path.read_text())["private_key"] == key


def test_ensure_rewrites_a_file_for_another_endpoint(tmp_path: Path) -> None:
    path = write_service_account(tmp_path / "sa.json", project_id="p", token_uri="http://x/token")
    ensure_service_account(path, project_id="p", token_uri="http://y/token")
    assert json.loads(path.read_text())["token_uri"] == "http://y/token"
