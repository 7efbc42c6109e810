"""Shared fixtures: real PostgreSQL and SQLite databases, settings, the app and its client.

Tests that take ``db_url`` run once per backend. PostgreSQL tests run in a schema of their own
inside ``NOTIFIER_TEST_DATABASE_URL``, so the suite never touches other data and can run beside
another suite. Services that do not answer skip their tests, unless NOTIFIER_REQUIRE_SERVICES=1
(as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.models import Base
from notifier.core.settings import Settings, load_settings, normalise_database_url
from notifier.http.app import create_app
from notifier.runtime import Runtime

# Shared across suites: one emulator process (emulator and sender suites) and one Chromium
# (widget and pages suites) per session.
pytest_plugins = ["tests.emulator_fixtures", "tests.chromium_fixture"]

PG_URL = os.environ.get("NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("NOTIFIER_REQUIRE_SERVICES") == "1"


def service_unavailable(name: str, reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose service does not answer."""
    message = f"{name} not reachable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (NOTIFIER_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def truncate_all(engine: Engine) -> None:
    """Empty every table but the topic catalogue, which each Runtime re-syncs anyway."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "topics"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A migrated, private schema in the test PostgreSQL database, dropped afterwards."""
    base = normalise_database_url(PG_URL)
    schema = f"notifier_t_{secrets.token_hex(4)}"
    admin = make_engine(base, pool_size=1, max_overflow=0)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        admin.dispose()
        service_unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}".splitlines()[0])
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_file_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "notifier.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty, migrated database of each backend in turn."""
    name = "pg_schema_url" if request.param == "postgresql" else "sqlite_file_url"
    url: str = request.getfixturevalue(name)
    engine = make_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_schema_url: str) -> str:
    """An empty PostgreSQL database, for tests that only make sense on the production backend."""
    engine = make_engine(pg_schema_url)
    truncate_all(engine)
    engine.dispose()
    return pg_schema_url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis (db 15 unless NOTIFIER_TEST_REDIS_URL says otherwise).

    Settings from :func:`make_settings` prefix every key with a per-test prefix, so nothing is
    flushed: other test runs on the same server keep their keys.
    """
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except redis.RedisError as exc:
        service_unavailable("Redis", str(exc))
    yield REDIS_URL
    for key in client.scan_iter(match=f"{_KEY_PREFIX.get()}*", count=1000):
        client.delete(key)
    client.close()


_KEY_PREFIX: ContextVar[str] = ContextVar("redis_key_prefix", default="t-unset:")


@pytest.fixture(autouse=True)
def _redis_key_prefix() -> None:
    """A fresh Redis key prefix for every test (see :func:`redis_url`)."""
    _KEY_PREFIX.set(f"t{secrets.token_hex(4)}:")


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings as a deployment would give them, from NOTIFIER_* variables only."""
    base = {
        "NOTIFIER_DATA_DIR": str(tmp_path / "var"),
        "NOTIFIER_LOG_FORMAT": "json",
        "NOTIFIER_REDIS_KEY_PREFIX": _KEY_PREFIX.get(),
    }
    base.update({f"NOTIFIER_{k.upper()}": v for k, v in env.items()})
    return load_settings(base)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=db_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.start(settings)
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    flask_app = create_app(runtime=runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
