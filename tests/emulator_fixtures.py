"""Emulator fixtures shared by the emulator and sender suites.

One emulator process serves the whole session, for the one Firebase project ``PROJECT``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from notifier.emulator import start_emulator_process, stop_emulator_process, write_service_account

PROJECT = "emulator-tests"
# The one page origin whose browsers may use the session emulator's web push stand-in.
STAND_IN_ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    """Base URL of an emulator process serving only ``PROJECT``, for the session."""
    proc, base_url = start_emulator_process(project_id=PROJECT, allowed_origins=(STAND_IN_ORIGIN,))
    yield base_url
    stop_emulator_process(proc)


@pytest.fixture(autouse=True)
def _reset_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Clear faults and received messages after every test that used the emulator."""
    yield
    if "emulator" in request.fixturenames:
        base_url = request.getfixturevalue("emulator")
        requests.post(f"{base_url}/emulator/faults", json={}, timeout=5)
        requests.delete(f"{base_url}/emulator/messages", timeout=5)


@pytest.fixture(scope="session")
def service_account_file(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated service account whose token_uri is the emulator's."""
    return write_service_account(
        tmp_path_factory.mktemp("sa") / "service-account.json",
        project_id=PROJECT,
        token_uri=f"{emulator}/token",
    )
