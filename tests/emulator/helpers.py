"""Small builders and readers shared by the emulator's tests."""

from __future__ import annotations

from typing import Any

import requests


def a_message(**overrides: Any) -> dict[str, Any]:
    """A valid FCM v1 message to a device token; keyword arguments replace or add fields."""
    message: dict[str, Any] = {
        "token": "device-token-1",
        "notification": {"title": "Breaking", "body": "Something happened"},
        "data": {"alert_id": "a1", "url": "https://news.example/a1"},
    }
    message.update(overrides)
    return message


def fcm_error(response: requests.Response) -> tuple[str, str | None]:
    """(canonical status, FcmError errorCode) from an FCM error response."""
    error = response.json()["error"]
    codes = [
        d.get("errorCode")
        for d in error.get("details", [])
        if d.get("@type") == "type.googleapis.com/google.firebase.fcm.v1.FcmError"
    ]
    return error["status"], (codes[0] if codes else None)
