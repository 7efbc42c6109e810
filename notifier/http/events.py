"""``POST /v1/events``: the CMS webhook, from signed bytes to :mod:`notifier.intake.events`.

The order is the point: cap the size before reading, verify the raw bytes before parsing, commit
before answering 2xx. The commit publishes the new alert's trigger (the runtime's publisher,
after the commit); a broker that is down then leaves it to the sweeper and the answer is still
2xx.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from notifier.core.counters import Tally, count_one
from notifier.core.db import transaction
from notifier.core.logs import bind
from notifier.http import context
from notifier.http.problems import (
    Problem,
    database_unavailable,
    database_unavailable_problem,
    validation_problem,
)
from notifier.http.requests import decode_json, read_body, require_utf8_charset
from notifier.intake.events import IntakeResult, IntakeRules, UnknownApps, record_event
from notifier.intake.signatures import WebhookRejected, verify_webhook
from notifier.runtime import Runtime

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)

# The CMS retries a 503; this asks it to give a restarting database a moment.


@bp.post("/v1/events")
def receive() -> tuple[Response, int]:
    runtime = context.runtime()
    try:
        return _receive(runtime)
    except Problem as problem:
        _count(runtime, f"rejected_{problem.status}")
        raise


def _count(runtime: Runtime, result: str) -> None:
    """Count a refused delivery for /metrics; best effort, it must never mask the answer."""
    tally = Tally()
    tally.add("notifier_webhook_requests_total", result=result)
    try:
        with transaction(runtime.sessions) as session:
            tally.flush(session)
    except Exception:  # the database may be the reason for the refusal
        log.debug("webhook rejection not counted", exc_info=True)


def _receive(runtime: Runtime) -> tuple[Response, int]:
    settings = runtime.settings
    body = _read_body(settings.webhook_max_bytes)
    try:
        webhook_id = verify_webhook(
            request.headers,
            body,
            settings.webhook_secrets,
            tolerance=settings.webhook_tolerance_seconds,
            now=time.time(),
        )
    except WebhookRejected as exc:
        log.warning("webhook rejected", extra={"fields": {"reason": exc.title}})
        raise Problem(exc.status, exc.title, exc.detail) from None
    bind(webhook_id=webhook_id)

    result = _ingest(runtime, webhook_id, _decode_json(body))
    log.info(
        "webhook event",
        extra={
            "fields": {
                "webhook_id": webhook_id,
                "decision": result.decision.value,
                "alert_id": result.alert_id,
                "replayed": result.replayed,
            }
        },
    )
    return jsonify(result.as_json()), result.status


def _read_body(limit: int) -> bytes:
    """The raw body, read whole up to the webhook's own cap (413 past it, chunked or not).

    The CMS may send any media type (the signature covers the bytes), but a declared charset
    other than UTF-8 is a 415: the JSON would otherwise be read as text it is not.
    """
    require_utf8_charset()
    request.max_content_length = limit
    return read_body(limit)


def _decode_json(body: bytes) -> object:
    """The verified bytes as JSON, read as every JSON route reads it (400 if they are not)."""
    return decode_json(body)


def _ingest(runtime: Runtime, webhook_id: str, payload: object) -> IntakeResult:
    """Record the event in one transaction; a database that does not answer is a 503."""
    settings = runtime.settings
    rules = IntakeRules(
        alerting_topics=runtime.alerting_topics,
        hold_seconds=settings.hold_seconds,
        ttl_seconds=settings.default_ttl_seconds,
        default_locale=settings.default_locale,
        apps=settings.apps.ids,
    )
    try:
        result = record_event(
            runtime.sessions,
            webhook_id=webhook_id,
            payload=payload,
            rules=rules,
            also=_counted,
            engine=runtime.engine,
            publisher=runtime.publisher_if_any,
        )
    except ValidationError as exc:
        raise validation_problem(exc) from None
    except UnknownApps as exc:
        raise Problem(422, "Unknown app", str(exc), unknown_apps=exc.app_ids) from None
    except (DBAPIError, PoolTimeout) as exc:
        if not database_unavailable(exc):
            raise
        log.warning(
            "database unavailable; webhook refused for the CMS to retry",
            extra={"fields": {"webhook_id": webhook_id, "error": type(exc).__name__}},
        )
        raise database_unavailable_problem(
            "The event could not be recorded; retry later."
        ) from None
    return result


def _counted(session: Session | Connection, result: IntakeResult) -> None:
    """Count the delivery by its decision, in the transaction that records it."""
    count_one(session, "notifier_webhook_requests_total", result=result.decision.value)
