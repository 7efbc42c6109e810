"""Small builders for the sender's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.fcm.types import Platform, PushAlert, Target
from tests.emulator_fixtures import PROJECT  # noqa: F401 (re-exported for the sender tests)


def make_alert(**overrides: Any) -> PushAlert:
    """A breaking alert valid for an hour; keyword arguments replace fields."""
    values: dict[str, Any] = {
        "alert_id": "alert-42",
        "headline": "Storm closes the coast road",
        "url": "https://news.example/storm",
        "expires_at": datetime.now(UTC) + timedelta(hours=1),
        "ttl_seconds": 1800,
        "body": "Police advise against travel until morning.",
        "image_url": "https://news.example/storm.jpg",
        "topics": ("weather", "local"),
        "analytics_label": None,
    }
    values.update(overrides)
    return PushAlert(**values)


def make_target(
    token: str = "device-token", platform: Platform = "android", device_id: int = 1
) -> Target:
    return Target(device_id=device_id, token=token, platform=platform)
