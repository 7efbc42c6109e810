"""Liveness (the process answers) and readiness (its dependencies answer)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from notifier.observability.health import check_dependencies

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = check_dependencies(current_app.extensions["notifier"])
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503
    )
