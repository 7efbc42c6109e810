"""Standard Webhooks signatures: verifying the CMS's deliveries, and signing test deliveries.

Pure functions over headers and raw bytes (no Flask), so the rules are unit-tested directly and the
same signer serves tests and the ``send-test-event`` command. The signed content is
``{id}.{timestamp}.{raw body}``: verifying anything but the exact bytes received (say, re-encoded
JSON) would reject valid deliveries or accept altered ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SIGNATURE_VERSION = "v1"
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)

# The id is stored (webhook_events.webhook_id is 200 characters) and logged, so it is limited to
# printable ASCII without spaces: a forged id cannot break a log line or overflow the column.
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,200}")
# Unix seconds; the length cap keeps int() cheap whatever a client sends.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class HeaderSource(Protocol):
    """Request headers: a plain dict, or Werkzeug's (case-insensitive) ``Headers``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class WebhookRejected(Exception):
    """Why a delivery was refused, as the HTTP status and problem title/detail to answer with."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail


def _unauthorised(title: str, detail: str) -> WebhookRejected:
    return WebhookRejected(401, title, detail)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the spec)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded, validate=True)


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender holding ``secret`` puts on this delivery."""
    return f"{SIGNATURE_VERSION},{_b64_digest(signing_key(secret), webhook_id, timestamp, body)}"


def verify_webhook(
    headers: HeaderSource,
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: int,
    now: float,
) -> str:
    """Check a delivery's signature headers against ``body``; return its ``webhook-id``.

    Every configured secret is tried, so a secret can be rotated without downtime: configure the
    new one beside the old, move the CMS over, then drop the old. The timestamp must lie within
    ``tolerance`` seconds of ``now`` in either direction: a captured delivery cannot be replayed
    later, nor one pre-signed for the future. Raises :class:`WebhookRejected` (401 for anything
    about the signature, 503 when no secret is configured, because accepting unsigned events would
    let anyone trigger a push to every reader).
    """
    keys = _keys(secrets)
    if not keys:
        raise WebhookRejected(
            503,
            "Webhook secrets not configured",
            "Set NOTIFIER_WEBHOOK_SECRETS; unsigned events are never accepted.",
        )
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id, timestamp, signatures = (
        _required(lowered, name) for name in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    )
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise _unauthorised(
            "Invalid webhook-id", "webhook-id must be 1-200 printable ASCII characters."
        )
    sent_at = _timestamp(timestamp, tolerance=tolerance, now=now)
    candidates = list(_v1_signatures(signatures))
    if not candidates:
        raise _unauthorised(
            "Unsupported webhook signature",
            f"webhook-signature has no {SIGNATURE_VERSION} signature.",
        )
    expected = [_digest(key, webhook_id, sent_at, body) for key in keys]
    # Every pair is compared in constant time; stopping at the first match leaks only which
    # position matched, never how much of a wrong signature was right.
    if not any(hmac.compare_digest(c, e) for c in candidates for e in expected):
        raise _unauthorised(
            "Invalid webhook signature", "No signature matches the body with a configured secret."
        )
    return webhook_id


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise _unauthorised("Missing webhook header", f"The {name} header is required.")
    return value


def _timestamp(raw: str, *, tolerance: int, now: float) -> int:
    if not _TIMESTAMP.fullmatch(raw):
        raise _unauthorised(
            "Invalid webhook timestamp", "webhook-timestamp must be Unix time in seconds."
        )
    sent_at = int(raw)
    if sent_at < now - tolerance:
        raise _unauthorised(
            "Webhook timestamp too old", f"webhook-timestamp is more than {tolerance} s old."
        )
    if sent_at > now + tolerance:
        raise _unauthorised(
            "Webhook timestamp in the future",
            f"webhook-timestamp is more than {tolerance} s ahead of this server's clock.",
        )
    return sent_at


def _v1_signatures(header: str) -> Iterable[bytes]:
    """The decoded ``v1`` signatures of a header; other versions and garbage are skipped."""
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            yield base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue


def _keys(secrets: Iterable[str]) -> list[bytes]:
    keys = []
    for position, secret in enumerate(secrets, start=1):
        try:
            keys.append(signing_key(secret))
        except (binascii.Error, ValueError):
            # No sender can sign with it; say which one without printing it.
            log.warning(
                "webhook secret is not valid base64 and is ignored",
                extra={"fields": {"secret_position": position}},
            )
    return keys


def _digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _b64_digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    return base64.b64encode(_digest(key, webhook_id, timestamp, body)).decode("ascii")
