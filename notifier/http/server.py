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
    }


def serve_api(settings: Settings, *, workers: int | None = None, threads: int = 8) -> None:
    from notifier.runtime import Runtime

    # Migrate/check the database once in the master, not racing in every worker.
    Runtime.start(settings).close()
    _Gunicorn(settings, gunicorn_options(settings, workers=workers, threads=threads)).run()
