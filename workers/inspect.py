"""Which workers answer and what they are running, via Celery's broadcast control channel."""

from __future__ import annotations

from typing import Any

from celery import Celery


def workers_seen(app: Celery, timeout: float = 1.0) -> list[dict[str, Any]]:
    """Every worker that answers within ``timeout``, with its active tasks (name and args only).

    Task args are ids (never tokens), so they are safe to show.
    """
    try:
        inspector = app.control.inspect(timeout=timeout)
        active = inspector.active() or {}
    except Exception:
        return []
    seen = []
    for name, tasks in sorted(active.items()):
        seen.append(
            {
                "name": name,
                "active": [
                    {"task": t.get("name"), "args": t.get("args"), "started": t.get("time_start")}
                    for t in tasks or []
                ],
            }
        )
    return seen
