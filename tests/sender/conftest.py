"""Fixtures for the sender tests: a real emulator, a real FcmSender, fault and inbox helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.fcm.sender import FcmSender
from tests.sender.factories import PROJECT


@pytest.fixture(scope="session")
def sender(emulator: str, service_account_file: Path) -> Iterator[FcmSender]:
    sender = FcmSender(
        project_id=PROJECT, endpoint=emulator, credentials_path=service_account_file, timeout=5
    )
    yield sender
    sender.close()


@pytest.fixture
def set_faults(emulator: str) -> Callable[..., None]:
    def _set(**faults: Any) -> None:
        requests.post(f"{emulator}/emulator/faults", json=faults, timeout=5).raise_for_status()

    return _set


@pytest.fixture
def received(emulator: str) -> Callable[[], list[dict[str, object]]]:
    """The messages the emulator accepted so far, oldest first."""

    def _received() -> list[dict[str, object]]:
        page = requests.get(f"{emulator}/emulator/messages?limit=1000", timeout=5).json()
        messages: list[dict[str, object]] = page["messages"]
        return messages

    return _received
