"""Per-client rate limits on the public endpoints (counters in Redis when configured).

Each app gets its own Limiter so two apps in one process (tests, or an embedded server) never
share in-memory counters; API processes share counts through Redis.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from notifier.core.settings import Settings

# endpoint -> scope in NOTIFIER_RATE_LIMITS
LIMITED_ENDPOINTS = {
    "subscriptions.subscribe": "subscriptions",
    "subscriptions.unsubscribe": "subscriptions",
    "subscriptions.rotate_token": "subscriptions",
    "subscriptions.lookup": "lookup",
    "events.receive": "events",
    "widget.open_alert": "opens",
}


def init_limiter(app: Flask, settings: Settings, endpoints: dict[str, str]) -> Limiter:
    """Attach limits to ``endpoints`` (view name -> scope). Call after blueprints are registered.

    Without Redis (embedded mode) each process counts alone, which is right for one machine. If
    Redis is briefly unreachable, serving without limits beats failing every reader.
    """
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1}
        if settings.redis_url
        else {},
        # One counter per client and window (one Redis INCR); a moving window costs a sorted
        # list per client and two scripts per request, for a precision public endpoints don't need.
        strategy="fixed-window",
        headers_enabled=True,
        swallow_errors=True,
        key_prefix=f"{settings.redis_key_prefix}notifier-limits",
    )
    for endpoint, scope in endpoints.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            limited = limiter.limit(settings.rate_limits[scope])(view)
            app.view_functions[endpoint] = limited  # type: ignore[assignment]
    return limiter
