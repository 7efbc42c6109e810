"""``POST /v1/events``: the CMS webhook, from signed bytes to :mod:`notifier.intake.events`.

The order is the point: cap the size before reading, verify the raw bytes before parsing, commit
before answering 2xx. The commit publishes the new alert's trigger (the runtime's after-commit
hook); a broker that is down then leaves it to the sweeper and the answer is still 2xx.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import RequestEntityTooLarge

from notifier.core.counters import Tally
from notifier.core.db import transaction
from notifier.core.logs import bind
from notifier.http import context
from notifier.http.problems import Problem, validation_problem
from notifier.intake.events import IntakeResult, IntakeRules, ingest_event
from notifier.intake.signatures import WebhookRejected, verify_webhook
from notifier.runtime import Runtime

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)

# The CMS retries a 503; this asks it to give a restarting database a moment.
DATABASE_RETRY_AFTER_SECONDS = 10
_READ_CHUNK = 64 * 1024


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
    """The raw body, refusing one over ``limit`` bytes without reading it all.

    A declared Content-Length is checked first; a chunked body (no Content-Length) is read in
    pieces and refused as soon as it passes the limit. Werkzeug enforces the same per-request cap
    on the stream, which is why its 413 is caught here too.
    """
    too_large = Problem(413, "Content Too Large", f"Webhook bodies are limited to {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    request.max_content_length = limit
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := request.stream.read(min(_READ_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_large
    except RequestEntityTooLarge:
        raise too_large from None
    return b"".join(chunks)


def _decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Malformed JSON", "The request body is not valid JSON.") from None


def _ingest(runtime: Runtime, webhook_id: str, payload: object) -> IntakeResult:
    """Record the event in one transaction; a database that does not answer is a 503."""
    settings = runtime.settings
    rules = IntakeRules(
        alerting_topics=runtime.alerting_topics,
        hold_seconds=settings.hold_seconds,
        ttl_seconds=settings.default_ttl_seconds,
    )
    try:
        with transaction(runtime.sessions) as session:
            result = ingest_event(session, webhook_id=webhook_id, payload=payload, rules=rules)
            tally = Tally()
            tally.add("notifier_webhook_requests_total", result=result.decision.value)
            tally.flush(session)
    except ValidationError as exc:
        raise validation_problem(exc) from None
    except (DBAPIError, PoolTimeout) as exc:
        if isinstance(exc, DBAPIError) and not _database_unavailable(exc):
            raise
        log.warning(
            "database unavailable; webhook refused for the CMS to retry",
            extra={"fields": {"webhook_id": webhook_id, "error": type(exc).__name__}},
        )
        raise Problem(
            503,
            "Service Unavailable",
            "The event could not be recorded; retry later.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        ) from None
    return result


def _database_unavailable(exc: DBAPIError) -> bool:
    """Connection trouble (worth a retry), as opposed to a bug such as a constraint violation."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
