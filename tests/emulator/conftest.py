"""Fixtures for the emulator's tests: one emulator process per session, reset after each test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from google.oauth2 import service_account

from tests.emulator_fixtures import PROJECT

SCOPES = ["https://www.googleapis.com/auth/firebase.messaging"]


@pytest.fixture(scope="session")
def access_token(service_account_file: Path) -> str:
    """An access token obtained through google-auth's real JWT-bearer flow."""
    creds = service_account.Credentials.from_service_account_file(
        str(service_account_file), scopes=SCOPES
    )
    import google.auth.transport.requests

    creds.refresh(google.auth.transport.requests.Request())
    return str(creds.token)


@pytest.fixture
def send(emulator: str, access_token: str) -> Callable[..., requests.Response]:
    """POST a raw ``messages:send`` body, authenticated unless told otherwise."""

    def _send(
        body: Any, *, token: str | None = access_token, project: str = PROJECT
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return requests.post(
            f"{emulator}/v1/projects/{project}/messages:send", json=body, headers=headers, timeout=5
        )

    return _send
