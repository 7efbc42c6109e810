"""Dependency checks behind ``/readyz`` and ``notifier status``."""

from __future__ import annotations

import redis
from sqlalchemy import text

from notifier.core.broker import ping_broker
from notifier.runtime import Runtime


def check_dependencies(runtime: Runtime) -> dict[str, str]:
    """``{"database": "ok"|error, "broker": ..., "redis": ...}``; errors are short class names."""
    results: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        results["database"] = "ok"
    except Exception as exc:
        results["database"] = f"unreachable ({type(exc).__name__})"
    try:
        ping_broker(runtime.settings)
        results["broker"] = "ok"
    except Exception as exc:
        results["broker"] = f"unreachable ({type(exc).__name__})"
    if runtime.settings.redis_url:
        try:
            client = redis.Redis.from_url(
                runtime.settings.redis_url, socket_connect_timeout=1, socket_timeout=1
            )
            client.ping()
            client.close()
            results["redis"] = "ok"
        except Exception as exc:
            results["redis"] = f"unreachable ({type(exc).__name__})"
    return results
