"""Liveness (the process answers) and readiness (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from notifier.http import context
from notifier.observability.health import check_dependencies

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    runtime = context.runtime()
    checks = check_dependencies(runtime.engine, runtime.settings)
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503
    )
