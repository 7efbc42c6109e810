"""Dependency checks behind ``/readyz`` and ``notifier status``."""

from __future__ import annotations

import redis
from sqlalchemy import Engine, text

from notifier.core.broker import ping_broker
from notifier.core.settings import Settings


def check_dependencies(engine: Engine, settings: Settings) -> dict[str, str]:
    """``{"database": "ok"|error, "broker": ..., "redis": ...}``; errors are short class names.

    Takes the engine and settings rather than the runtime: observability sits below
    ``notifier.runtime`` in the layers, so the caller hands over what is to be checked.
    """
    results: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        results["database"] = "ok"
    except Exception as exc:
        results["database"] = f"unreachable ({type(exc).__name__})"
    try:
        ping_broker(settings)
        results["broker"] = "ok"
    except Exception as exc:
        results["broker"] = f"unreachable ({type(exc).__name__})"
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=1, socket_timeout=1
            )
            client.ping()
            client.close()
            results["redis"] = "ok"
        except Exception as exc:
            results["redis"] = f"unreachable ({type(exc).__name__})"
    return results
