"""The editors' console and the ops dashboard: static pages that call the JSON API from the browser.

The pages hold no server-side state and no templating: each is an HTML shell plus ES modules and
a stylesheet under ``notifier/static/{console,dashboard,common}``. They authenticate to the API
with the same Bearer keys as any other client, so the pages can never do more than the key can.

Headlines come from the CMS and from editors, so every page is served with a Content Security
Policy that allows scripts only from this origin (no inline script, no ``eval``): even if a
rendering bug ever put markup into the DOM, an injected ``<script>`` or ``onerror=`` would not run.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from notifier.http.problems import Problem

bp = Blueprint("pages", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
AREAS = ("console", "dashboard", "common")

# Images: an editor previews the image URL they typed, which lives on the newsroom's own CDN.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)


@bp.after_request
def _harden(response: Response) -> Response:
    """Security headers on every page and asset; ``no-cache`` so a deploy is seen at once."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/console")
def console() -> Response:
    """Editors: alerts in their hold window, recent deliveries, and a manual alert form."""
    return send_from_directory(STATIC / "console", "index.html")


@bp.get("/dashboard")
def dashboard() -> Response:
    """Ops: throughput, error rate, queues, workers and alerts in flight, refreshing itself."""
    return send_from_directory(STATIC / "dashboard", "index.html")


@bp.get("/ui/<area>/<name>")
def asset(area: str, name: str) -> Response:
    """The pages' scripts and stylesheets (``send_from_directory`` refuses paths outside)."""
    if area not in AREAS or not name.endswith((".js", ".css")):
        raise Problem(404, "Not Found", "No such page asset.")
    return send_from_directory(STATIC / area, name)
