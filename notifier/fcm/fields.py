"""Field values of an FCM message derived from an alert, with the limits each platform imposes.

Firebase-free so that the rules (how long a message may live, what may serve as a collapse id, a
web push Topic or an analytics label) can be read and tested without the SDK.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from notifier.fcm.types import PushAlert

ANDROID_CHANNEL_ID = "breaking"
# Quiet hours (mode ``silent``): the app's channel without sound or heads-up, low priority.
ANDROID_QUIET_CHANNEL_ID = "quiet"
ANDROID_QUIET_PRIORITY = "PRIORITY_LOW"
# iOS shows a passive notification in the list without lighting the screen or sounding.
IOS_INTERRUPTION_LEVEL = "time-sensitive"
IOS_QUIET_INTERRUPTION_LEVEL = "passive"
DEFAULT_THREAD_ID = "breaking"
_APNS_COLLAPSE_ID_MAX_BYTES = 64
_WEB_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_LABEL_FORBIDDEN = re.compile(r"[^a-zA-Z0-9\-_.~%]")
_LABEL_MAX = 50


def remaining_ttl(alert: PushAlert, now: datetime | None = None) -> int:
    """Whole seconds the alert may still wait on FCM's side: until it expires, at most its TTL.

    Zero or less means the alert is stale and must not be sent: news that arrives after it stopped
    mattering is worse than none.
    """
    now = now or datetime.now(UTC)
    left = int((alert.expires_at - now).total_seconds())
    return min(left, alert.ttl_seconds)


def _digest(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).decode().rstrip("=")


def apns_collapse_id(alert_id: str) -> str:
    """The alert id, or a digest of it when it exceeds APNs' 64-byte limit."""
    if len(alert_id.encode()) <= _APNS_COLLAPSE_ID_MAX_BYTES:
        return alert_id
    return _digest(alert_id)[:_APNS_COLLAPSE_ID_MAX_BYTES]


def webpush_topic(alert_id: str) -> str:
    """A web push ``Topic`` header (at most 32 URL-safe base64 characters) naming the alert."""
    if _WEB_TOPIC.match(alert_id):
        return alert_id
    return _digest(alert_id)[:32]


def analytics_label(alert: PushAlert) -> str:
    """The alert's analytics label made to fit FCM's ``^[a-zA-Z0-9-_.~%]{1,50}$``."""
    label = _LABEL_FORBIDDEN.sub("-", alert.analytics_label or alert.alert_id)[:_LABEL_MAX]
    return label or "alert"


def thread_id(alert: PushAlert) -> str:
    """How iOS groups the notification: by the alert's first topic."""
    return alert.topics[0] if alert.topics else DEFAULT_THREAD_ID


def expiration_timestamp(alert: PushAlert) -> str:
    """``apns-expiration``: the UNIX time after which APNs stops trying."""
    return str(int(alert.expires_at.timestamp()))


def https_link(url: str) -> str | None:
    """The link a web notification opens; FCM accepts only HTTPS there."""
    return url if url.startswith("https://") else None


def android_channel(silent: bool) -> str:
    """The Android notification channel: the quiet one during the reader's quiet hours."""
    return ANDROID_QUIET_CHANNEL_ID if silent else ANDROID_CHANNEL_ID


def ios_interruption_level(silent: bool) -> str:
    """``aps.interruption-level``: ``passive`` (no sound, no screen) during quiet hours."""
    return IOS_QUIET_INTERRUPTION_LEVEL if silent else IOS_INTERRUPTION_LEVEL
