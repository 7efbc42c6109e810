"""FCM HTTP v1 validation of a ``messages:send`` body, answering the way FCM does.

Only what FCM itself rejects is rejected: unknown fields, not exactly one target, non-string data
values, malformed durations, reserved data keys, a non-HTTPS web link, a malformed analytics label
and payloads over 4096 bytes. Field names are accepted in both proto spellings (``collapse_key``
and ``collapseKey``) because FCM's JSON parser accepts both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifier.emulator.errors import FcmProblem

MAX_PAYLOAD_BYTES = 4096

_DURATION = re.compile(r"^\d{1,12}(\.\d{1,9})?s$")
_TOPIC = re.compile(r"^(/topics/)?[a-zA-Z0-9\-_.~%]+$")
_LABEL = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,50}$")
_CAMEL = re.compile(r"(?<!^)([A-Z])")
_RESERVED_DATA_KEYS = frozenset({"from", "message_type", "notification"})

_TARGETS = ("token", "fid", "topic", "condition")
_MESSAGE_FIELDS = frozenset(
    {"name", "data", "notification", "android", "webpush", "apns", "fcm_options", *_TARGETS}
)
_NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
_ANDROID_FIELDS = frozenset(
    {
        "collapse_key", "priority", "ttl", "restricted_package_name", "data", "notification",
        "fcm_options", "direct_boot_ok", "bandwidth_constrained_ok", "restricted_satellite_ok",
    }
)  # fmt: skip
_ANDROID_NOTIFICATION_FIELDS = frozenset(
    {
        "title", "body", "icon", "color", "sound", "tag", "click_action", "body_loc_key",
        "body_loc_args", "title_loc_key", "title_loc_args", "channel_id", "ticker", "sticky",
        "event_time", "local_only", "notification_priority", "default_sound",
        "default_vibrate_timings", "default_light_settings", "vibrate_timings", "visibility",
        "notification_count", "light_settings", "image", "bypass_proxy_notification", "proxy",
    }
)  # fmt: skip
_APNS_FIELDS = frozenset({"headers", "payload", "fcm_options", "live_activity_token"})
_WEBPUSH_FIELDS = frozenset({"headers", "data", "notification", "fcm_options"})


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A ``messages:send`` body that FCM would accept."""

    message: dict[str, Any]
    target_kind: str
    target: str
    validate_only: bool

    @property
    def platform(self) -> str:
        """Which platform section the message carries; ``any`` when none or several."""
        present = [p for p in ("android", "apns", "webpush") if p in self.message]
        if len(present) != 1:
            return "any"
        return {"android": "android", "apns": "ios", "webpush": "web"}[present[0]]


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.problem = FcmProblem("INVALID_ARGUMENT", message, path)


def parse_send_request(raw: bytes) -> SendRequest | FcmProblem:
    """Parse and validate a raw request body, or say what FCM would answer instead."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return FcmProblem("INVALID_ARGUMENT", "Invalid JSON payload received.", None)
    try:
        return _validate(body, len(raw))
    except _Invalid as invalid:
        return invalid.problem


def _validate(body: object, raw_size: int) -> SendRequest:
    top = _fields(body, "", frozenset({"message", "validate_only"}))
    if "message" not in top:
        raise _Invalid("message", "Request contains an invalid argument: message is required.")
    validate_only = top.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise _Invalid(
            "validate_only", f"Invalid value at 'validate_only' (TYPE_BOOL), {validate_only!r}"
        )
    message = _fields(top["message"], "message", _MESSAGE_FIELDS)
    kind, target = _target(message)
    _string_map(message.get("data"), "message.data", data=True)
    if "notification" in message:
        _string_fields(message["notification"], "message.notification", _NOTIFICATION_FIELDS)
    if "android" in message:
        _android(message["android"])
    if "apns" in message:
        _apns(message["apns"])
    if "webpush" in message:
        _webpush(message["webpush"])
    if "fcm_options" in message:
        _fcm_options(message["fcm_options"], "message.fcm_options", frozenset({"analytics_label"}))
    # The raw body bounds the payload, so the exact size is only worth computing near the limit.
    if raw_size > MAX_PAYLOAD_BYTES:
        _payload_size(message)
    return SendRequest(message, kind, target, validate_only)


def _fields(value: object, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    """An object's fields under their snake_case names, refusing names FCM does not know."""
    where = path or "<root>"
    if not isinstance(value, dict):
        raise _Invalid(path, f"Invalid value at '{where}': expected an object.")
    if value.keys() <= allowed:
        return value  # the common case: every name already in snake_case and known
    fields: dict[str, Any] = {}
    for key, item in value.items():
        name = _CAMEL.sub(r"_\1", key).lower() if key not in allowed else key
        if name not in allowed:
            raise _Invalid(
                path,
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
                "Cannot find field.",
            )
        fields[name] = item
    return fields


def _target(message: Mapping[str, Any]) -> tuple[str, str]:
    present = [t for t in _TARGETS if t in message]
    if len(present) != 1:
        raise _Invalid(
            "message",
            "Exactly one of message.token, message.fid, message.topic or message.condition must "
            "be specified; "
            f"got {len(present)}.",
        )
    kind = present[0]
    value = message[kind]
    if not isinstance(value, str) or not value:
        raise _Invalid(f"message.{kind}", f"Invalid value at 'message.{kind}' (TYPE_STRING)")
    if kind == "topic" and not _TOPIC.match(value):
        raise _Invalid("message.topic", f"Invalid topic name: {value}")
    return kind, value


def _string_map(value: object, path: str, *, data: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _Invalid(path, f"Invalid value at '{path}': expected a map of strings.")
    for index, (key, item) in enumerate(value.items()):
        if not isinstance(item, str):
            raise _Invalid(
                path, f"Invalid value at '{path}[{index}].value' (TYPE_STRING), {json.dumps(item)}"
            )
        lowered = key.lower()
        if data and (lowered in _RESERVED_DATA_KEYS or lowered.startswith(("google", "gcm"))):
            raise _Invalid(path, f"Invalid data payload key: {key}")


def _string_fields(value: object, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    fields = _fields(value, path, allowed)
    for name, item in fields.items():
        if not isinstance(item, str):
            raise _Invalid(f"{path}.{name}", f"Invalid value at '{path}.{name}' (TYPE_STRING)")
    return fields


def _duration(value: object, path: str) -> None:
    if not isinstance(value, str) or not _DURATION.match(value):
        raise _Invalid(
            path,
            f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Duration), "
            f"Field '{path.rsplit('.', 1)[-1]}', Illegal duration format; duration must end "
            "with 's'",
        )


def _android(value: object) -> None:
    android = _fields(value, "message.android", _ANDROID_FIELDS)
    if "ttl" in android:
        _duration(android["ttl"], "message.android.ttl")
    priority = android.get("priority")
    if priority is not None and str(priority).upper() not in ("NORMAL", "HIGH"):
        raise _Invalid(
            "message.android.priority",
            f"Invalid value at 'message.android.priority' (TYPE_ENUM), \"{priority}\"",
        )
    _string_map(android.get("data"), "message.android.data", data=True)
    if "notification" in android:
        _fields(
            android["notification"], "message.android.notification", _ANDROID_NOTIFICATION_FIELDS
        )
    if "fcm_options" in android:
        _fcm_options(
            android["fcm_options"], "message.android.fcm_options", frozenset({"analytics_label"})
        )


def _apns(value: object) -> None:
    apns = _fields(value, "message.apns", _APNS_FIELDS)
    _string_map(apns.get("headers"), "message.apns.headers")
    payload = apns.get("payload")
    if payload is not None and (
        not isinstance(payload, dict) or not isinstance(payload.get("aps", {}), dict)
    ):
        raise _Invalid("message.apns.payload", "Invalid APNs payload: aps must be an object.")
    if "fcm_options" in apns:
        _fcm_options(
            apns["fcm_options"], "message.apns.fcm_options", frozenset({"analytics_label", "image"})
        )


def _webpush(value: object) -> None:
    webpush = _fields(value, "message.webpush", _WEBPUSH_FIELDS)
    _string_map(webpush.get("headers"), "message.webpush.headers")
    _string_map(webpush.get("data"), "message.webpush.data", data=True)
    if "notification" in webpush and not isinstance(webpush["notification"], dict):
        raise _Invalid("message.webpush.notification", "Invalid web push notification.")
    if "fcm_options" in webpush:
        options = _fcm_options(
            webpush["fcm_options"],
            "message.webpush.fcm_options",
            frozenset({"link", "analytics_label"}),
        )
        link = options.get("link")
        if link is not None and not str(link).startswith("https://"):
            raise _Invalid("message.webpush.fcm_options.link", "The link must be a HTTPS URL.")


def _fcm_options(value: object, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    options = _string_fields(value, path, allowed)
    label = options.get("analytics_label")
    if label is not None and not _LABEL.match(label):
        raise _Invalid(f"{path}.analytics_label", f"Invalid analytics label: {label}")
    return options


def _size(*parts: object) -> int:
    present = [p for p in parts if p]
    return len(json.dumps(present, separators=(",", ":"), ensure_ascii=False).encode())


def _payload_size(message: Mapping[str, Any]) -> None:
    """Refuse a message whose payload, as any one platform would receive it, exceeds 4 KB."""
    common = (message.get("data"), message.get("notification"))
    android = message.get("android") or {}
    apns = message.get("apns") or {}
    webpush = message.get("webpush") or {}
    sizes = {
        "message": _size(*common),
        "message.android": _size(*common, android.get("data"), android.get("notification")),
        "message.apns": _size(*common, apns.get("payload")),
        "message.webpush": _size(*common, webpush.get("data"), webpush.get("notification")),
    }
    for path, size in sizes.items():
        if size > MAX_PAYLOAD_BYTES:
            raise _Invalid(
                path, f"Message is too big: {size} bytes of payload, the limit is 4096 bytes."
            )
