"""Small builders for test data, so tests say only what matters to them."""

from __future__ import annotations

import itertools
from typing import Any

_seq = itertools.count(1)


def token(prefix: str = "fcm") -> str:
    """A fresh, valid-looking FCM registration token."""
    return f"{prefix}-{next(_seq):06d}:APA91b" + "x" * 40


def subscription(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"token": token(), "platform": "android", "topics": ["israel"]}
    body.update(overrides)
    return body
