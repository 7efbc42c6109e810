"""Serving the API under gunicorn, the production WSGI server, from the ``notifier`` command."""

from __future__ import annotations

import multiprocessing
from typing import Any

from gunicorn.app.base import BaseApplication

from notifier.core.settings import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from notifier.http.app import create_app

        return create_app(self.settings)


def gunicorn_options(settings: Settings, *, workers: int | None, threads: int) -> dict[str, Any]:
    """Options that matter in production; anything else can go in GUNICORN_CMD_ARGS."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        # Several workers are safe for rate limits: they share one counter store (Redis, or the
        # SQLite file of notifier.http.limits), so more workers never multiply an allowance.
        "workers": workers or min(2 * multiprocessing.cpu_count() + 1, 9),
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": 5,
        # Access logs come from the app (JSON, no bodies); gunicorn's would repeat them.
        "accesslog": None,
        "errorlog": "-",
        "preload_app": False,
        "forwarded_allow_ips": "127.0.0.1",
        "post_worker_init": _build_publisher,
    }


def _build_publisher(worker: Any) -> None:
    """Build the worker's trigger publisher (the Celery app) before it takes a request.

    It is built on first use otherwise, by the worker's first alert: tens of milliseconds of
    imports and configuration holding the GIL, which every request in that worker waited for
    (the first second of ``bench/intake.py``'s events at 200/s held its whole p99 tail). Building
    it does not connect to the broker; the first publish does. Best effort: a worker that cannot
    build it now builds it at the first publish, as before, and says why there.
    """
    from notifier.http import context

    try:
        with worker.wsgi.app_context():
            context.runtime().publisher_if_any()
    except Exception:
        worker.log.warning("publisher not built at start; the first alert will build it")


def serve_api(settings: Settings, *, workers: int | None = None, threads: int = 8) -> None:
    from notifier.runtime import Runtime

    # Migrate/check the database once in the master, not racing in every worker.
    Runtime.start(settings).close()
    _Gunicorn(settings, gunicorn_options(settings, workers=workers, threads=threads)).run()
