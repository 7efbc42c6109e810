"""``Idempotency-Key`` for the two routes that create alerts (alerts, and alerts from articles).

An editor's retry (a double click, a timeout) must return the alert the first request made, and
the same key with another body must be refused, whichever route made it: both share this.
"""

from __future__ import annotations

import hashlib
import json

from flask import Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.alerts.service import alert_view
from notifier.core.models import Alert
from notifier.http.problems import Problem


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key``, if any (400 when it is empty or too long)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 200):
        raise Problem(400, "Bad Idempotency-Key", "The Idempotency-Key must be 1-200 characters.")
    return key


def request_hash(request_json: object) -> str:
    """What identifies a request's body under its key: the same JSON in any key order."""
    return hashlib.sha256(json.dumps(request_json, sort_keys=True).encode()).hexdigest()


def alert_by_key(session: Session, key: str | None, owner: str) -> Alert | None:
    """The alert this key holder already made with ``key``; keys are per API key."""
    if key is None:
        return None
    return session.scalar(
        select(Alert).where(Alert.idempotency_key == key, Alert.created_by == owner)
    )


def replay(alert: Alert, body_hash: str) -> tuple[Response, int]:
    """Answer a retry with the alert it made, or 422 when the key came with another body."""
    if alert.request_hash != body_hash:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request body.",
        )
    response = jsonify(alert_view(alert))
    response.headers["Idempotent-Replayed"] = "true"
    return response, 201
