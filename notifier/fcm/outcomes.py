"""From FCM's answer for one device to notifier's typed outcome (firebase-free, so testable alone).

The rules follow FCM's documented guidance: a dead token is pruned, a transient failure is
retried no sooner than FCM asked (at least a minute after QUOTA_EXCEEDED), and whatever retrying
cannot fix (APNs/web push credentials, a payload FCM refuses) is fatal for this alert.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from notifier.fcm.types import Fatal, Outcome, Prune, Retry

# FCM asks for at least a minute of backoff after QUOTA_EXCEEDED, whatever it says.
QUOTA_MIN_RETRY_AFTER = 60.0

PRUNE_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})
# UNAUTHENTICATED reaches here only when a fresh access token was refused too; UNKNOWN covers
# proxies' 502/504. Both are the service's trouble, not the device's; the caller caps attempts.
RETRY_CODES = frozenset(
    {"UNAVAILABLE", "INTERNAL", "network", "DEADLINE_EXCEEDED", "UNAUTHENTICATED", "UNKNOWN"}
)

_TOKEN_FIELDS = frozenset({"message.token", "token"})
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def names_registration_token(message: str, error: Mapping[str, Any] | None) -> bool:
    """Whether an INVALID_ARGUMENT is about the device token rather than the payload.

    FCM words it "The registration token is not a valid FCM registration token" and may name
    ``message.token`` in a BadRequest field violation; only then is the token itself dead.
    """
    if "registration token" in message.lower():
        return True
    for detail in (error or {}).get("details") or ():
        if isinstance(detail, Mapping) and detail.get("@type") == _BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or ():
                if isinstance(violation, Mapping) and violation.get("field") in _TOKEN_FIELDS:
                    return True
    return False


def classify(
    device_id: int, code: str, *, token_named: bool = False, retry_after: float | None = None
) -> Outcome:
    """The outcome for a device whose send failed with FCM error ``code``.

    ``code`` is FCM's error code when it gave one (UNREGISTERED, QUOTA_EXCEEDED, ...), else the
    canonical status (INVALID_ARGUMENT, UNAVAILABLE, ...), or ``network`` when no answer came.
    """
    if code in PRUNE_CODES:
        return Prune(device_id, code)
    if code == "INVALID_ARGUMENT":
        return Prune(device_id, code) if token_named else Fatal(device_id, code)
    if code in QUOTA_CODES:
        return Retry(device_id, "QUOTA_EXCEEDED", max(retry_after or 0.0, QUOTA_MIN_RETRY_AFTER))
    if code in RETRY_CODES:
        return Retry(device_id, code, retry_after)
    return Fatal(device_id, code)
