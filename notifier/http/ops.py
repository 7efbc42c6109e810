"""Ops endpoints: queue and worker visibility, throughput, and Prometheus /metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST

from notifier.core.models import utcnow
from notifier.http import context
from notifier.http.auth import require_role
from notifier.http.problems import Problem
from notifier.observability import ops_view as ops
from notifier.observability.metrics import render
from notifier.observability.queues import inspect_broker

bp = Blueprint("ops", __name__)


def _workers() -> list[dict[str, Any]]:
    from workers.celery_app import make_celery
    from workers.inspect import workers_seen

    runtime = context.runtime()
    if runtime.settings.embedded_broker:
        return []  # the filesystem transport has no broadcast channel to ask workers on
    app = current_app.extensions.get("notifier_celery")
    if app is None:
        app = make_celery(runtime.settings)
        current_app.extensions["notifier_celery"] = app
    return workers_seen(app)


@bp.get("/v1/ops/queues")
@require_role("ops")
def queues() -> Response:
    runtime = context.runtime()
    with runtime.sessions() as session:
        return jsonify(ops.snapshot(session, runtime.settings, _workers))


@bp.get("/v1/ops/throughput")
@require_role("ops", "editor")
def throughput() -> Response:
    try:
        minutes = int(request.args.get("minutes", "60"))
    except ValueError:
        raise Problem(400, "Bad minutes", "minutes must be a whole number.") from None
    if not 1 <= minutes <= 24 * 60:
        raise Problem(400, "Bad minutes", "minutes must be between 1 and 1440.")
    with context.runtime().sessions() as session:
        return jsonify({"minutes": ops.throughput(session, utcnow(), minutes)})


@bp.get("/metrics")
def metrics() -> Response:
    runtime = context.runtime()
    broker = inspect_broker(runtime.settings)
    with runtime.sessions() as session:
        body = render(session, broker, utcnow())
    return Response(
        body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], content_type=CONTENT_TYPE_LATEST
    )
