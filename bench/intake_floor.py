"""The floor under ``bench/intake.py`` phase A: what Flask on gunicorn costs before notifier does.

A minimal API served exactly as ``notifier api`` serves (``notifier.http.server``'s gunicorn
options: gthread, the same workers, threads, keep-alive and timeouts): one JSON POST route,
``/v1/subscriptions``, that parses the body with Flask, does one ``INSERT`` through psycopg
(one connection per thread, autocommit) and answers 201 with a small JSON object. No
validation, no rate limit, no request log, no ORM: the server CPU per request it spends is the
part of phase A's figure that the framework, the WSGI server and one database round trip take
whatever the application does. Started by ``bench/intake.py`` (phase ``floor``), not by hand:

    NOTIFIER_DATABASE_URL=... NOTIFIER_PORT=... python bench/intake_floor.py --workers 2 --threads 2
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import psycopg
from flask import Flask, jsonify, request
from gunicorn.app.base import BaseApplication

from notifier.core.settings import load_settings
from notifier.http.server import gunicorn_options

TABLE = "bench_floor_subscriptions"


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (no ``+driver``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def create_floor_app(database_url: str) -> Flask:
    app = Flask("floor")
    local = threading.local()

    def connection() -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(database_url, autocommit=True)
        return conn

    @app.get("/livez")
    def livez() -> tuple[str, int]:
        return "ok", 200

    @app.post("/v1/subscriptions")
    def subscribe() -> tuple[Any, int]:
        body = request.get_json()
        row = (
            connection()
            .execute(
                f"INSERT INTO {TABLE} (token, platform, topics) VALUES (%s, %s, %s) "
                "RETURNING id, created_at",
                (body["token"], body["platform"], body["topics"]),
            )
            .fetchone()
        )
        assert row is not None
        answer = {"platform": body["platform"], "topics": body["topics"]}
        answer["created_at"] = row[1].isoformat()
        return jsonify(answer), 201

    return app


class _Floor(BaseApplication):
    def __init__(self, options: dict[str, Any], database_url: str) -> None:
        self.options, self.database_url = options, database_url
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_floor_app(self.database_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    settings = load_settings()
    database_url = libpq_url(settings.effective_database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, "
            "token text NOT NULL UNIQUE, platform text NOT NULL, topics text[] NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now())"
        )
    options = gunicorn_options(settings, workers=args.workers, threads=args.threads)
    _Floor(options, database_url).run()


if __name__ == "__main__":
    main()
