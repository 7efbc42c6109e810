"""The Flask application factory; gunicorn serves ``notifier.http.app:create_app()``."""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, request

from notifier.core.logs import bind, clear, configure_logging
from notifier.core.settings import Settings
from notifier.http import (
    alerts,
    articles,
    context,
    cors,
    events,
    health,
    openapi,
    ops,
    pages,
    subscriptions,
    testdevices,
    widget,
)
from notifier.http.limits import LIMITED_ENDPOINTS, init_limiter
from notifier.http.problems import Problem, register_error_handlers
from notifier.runtime import Runtime
from workers.publish import celery_publisher

access_log = logging.getLogger("notifier.access")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the API. Tests pass a ``runtime`` bound to their database.

    The API publishes triggers to Celery; a runtime passed in without a publisher factory gets
    that one too, so a test app publishes as the real one does unless the test sets its own.
    """
    runtime = runtime or Runtime.start(settings, publisher_factory=celery_publisher)
    if runtime.publisher_factory is None:
        runtime.publisher_factory = celery_publisher
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format)
    # No implicit /static route: every asset is served by a blueprint that sets its own headers.
    app = Flask("notifier", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max(settings.max_body_bytes, settings.webhook_max_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context.install(app, runtime)
    register_error_handlers(app)
    cors.init_cors(app, settings.cors_origins)
    app.register_blueprint(health.bp)
    app.register_blueprint(subscriptions.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(articles.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(testdevices.bp)
    app.register_blueprint(widget.bp)
    # Before the limits: Flask runs after_request hooks last-registered first, and this one
    # must see their headers.
    _response_headers(app)
    init_limiter(app, settings, LIMITED_ENDPOINTS)
    _body_limits(app, settings)
    _request_log(app)
    return app


def _body_limits(app: Flask, settings: Settings) -> None:
    """Cap request bodies at NOTIFIER_MAX_BODY_BYTES, except the webhook, which has its own cap.

    Flask's MAX_CONTENT_LENGTH is the larger of the two so the webhook can read its body; this
    narrows it for every other route before any view reads a byte.
    """

    @app.before_request
    def _cap() -> None:
        if request.path == "/v1/events":
            return
        limit = settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Problem(413, "Content Too Large", f"Request bodies are limited to {limit} bytes.")
        request.max_content_length = limit


# Statuses whose Retry-After asks the client to come back later (RFC 6585 4, RFC 9110 15.6.4).
_RETRY_STATUSES = frozenset({429, 503})


def _response_headers(app: Flask) -> None:
    """Headers that must match the status, whatever view or extension made the response.

    A 204 has no body, so it gets no Content-Type (Flask would say text/html for the empty
    string). Retry-After stays only where the status asks the client to retry: on a success it
    would tell a client to back off from nothing.
    """

    @app.after_request
    def _fit(response: Response) -> Response:
        if response.status_code == 204:
            response.headers.pop("Content-Type", None)
            response.headers.pop("Content-Length", None)
        if response.status_code not in _RETRY_STATUSES:
            response.headers.pop("Retry-After", None)
        return response


def _request_log(app: Flask) -> None:
    """One access line per request with its id, path template and status; never the body."""

    @app.before_request
    def _start() -> None:
        clear()
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 else uuid.uuid4().hex
        bind(request_id=g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if not access_log.isEnabledFor(logging.INFO):
            return response  # NOTIFIER_LOG_LEVEL above INFO: skip building a line nobody sees
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "route": rule,
                    "status": response.status_code,
                    "ms": round(
                        (time.perf_counter() - g.get("started", time.perf_counter())) * 1e3, 2
                    ),
                }
            },
        )
        return response
