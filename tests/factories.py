"""Small builders for test data, so tests say only what matters to them."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from notifier.core.models import Alert

ROLES = ("editor", "ops", "admin")

_seq = itertools.count(1)


def token(prefix: str = "fcm") -> str:
    """A fresh, valid-looking FCM registration token."""
    return f"{prefix}-{next(_seq):06d}:APA91b" + "x" * 40


def subscription(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"token": token(), "platform": "android", "topics": ["israel"]}
    body.update(overrides)
    return body


def api_keys(runtime: Runtime, roles: tuple[str, ...] = ROLES) -> dict[str, str]:
    """One fresh API key per role, by role name, made as ``notifier keys create`` makes them."""
    made = {}
    with transaction(runtime.sessions) as session:
        for role in roles:
            made[role], _ = create_key(session, role, f"{role} key")
    return made


def auth(key: str, **headers: str) -> dict[str, str]:
    """Request headers carrying ``key`` as a bearer token, plus any others given."""
    return {"Authorization": f"Bearer {key}", **headers}


def signed_event(secret: str, type_: str, data: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A webhook event as the CMS sends it: the JSON body, and headers that sign it under
    ``secret`` with a fresh webhook id and the current time (so replay checks pass)."""
    body = json.dumps({"type": type_, "data": data}).encode()
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return body, {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, webhook_id, timestamp, body),
    }


def due_alert(
    session: Session,
    *,
    headline: str = "Sirens",
    url: str = "https://news.example/a",
    topics: tuple[str, ...] = ("israel",),
) -> Alert:
    """An alert due at once (no hold) with an hour to live, in the caller's transaction."""
    from notifier.alerts.service import AlertDraft, create_alert

    draft = AlertDraft(headline=headline, url=url, topics=topics)
    return create_alert(session, draft, default_hold=0, default_ttl=3600)
