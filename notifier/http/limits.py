"""Per-client rate limits on the public endpoints (Redis-backed when configured)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from notifier.settings import Settings

limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")


def init_limiter(app: Flask, settings: Settings) -> None:
    """Share counters across API processes through Redis when there is one.

    Without Redis (embedded mode) each process counts alone, which is right for one machine.
    """
    app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    if not settings.redis_url:
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {}
    # If Redis is briefly unreachable, serving without limits beats failing every reader.
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    limiter.init_app(app)


def limit(scope: str) -> str:
    """The configured rate for ``scope``, looked up at request time from the app's settings."""
    from flask import current_app

    settings: Settings = current_app.extensions["notifier"].settings
    return settings.rate_limits[scope]
