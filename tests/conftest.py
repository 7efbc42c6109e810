"""Shared fixtures: real PostgreSQL and SQLite databases, settings, the app and its client.

Tests that take ``db_url`` run once per backend. PostgreSQL tests run in a schema of their own
inside ``NOTIFIER_TEST_DATABASE_URL``, so the suite never touches other data and can run beside
another suite. Services that do not answer skip their tests, unless NOTIFIER_REQUIRE_SERVICES=1
(as in CI), where they fail instead.

Every test that needs a service (PostgreSQL, Redis, RabbitMQ, a Celery worker, the emulator process,
Chromium, or a server process of its own) is marked ``services`` here, at collection, from the
fixtures it uses; ``make test-fast`` runs the rest (``-m "not services"``).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

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
from tests.factories import api_keys

# Shared across suites: one emulator process (emulator and sender suites) and one Chromium
# (widget and pages suites) per session.
pytest_plugins = ["tests.emulator_fixtures", "tests.chromium_fixture"]

PG_URL = os.environ.get("NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("NOTIFIER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REQUIRE_SERVICES = os.environ.get("NOTIFIER_REQUIRE_SERVICES") == "1"


# Fixtures that reach a service or start one, wherever they are defined (this file, the emulator and
# Chromium plugins, the pipeline, pages and readiness suites). A fixture that depends on one of
# these (``stack_factory`` on ``pg_url``, ``service_account_file`` on ``emulator``) is covered
# too, as pytest lists a test's whole fixture closure in ``item.fixturenames``.
SERVICE_FIXTURES = frozenset(
    {
        "pg_schema_url",
        "pg_url",
        "redis_url",
        "amqp_url",
        "emulator",
        "chromium",
        "stack_factory",
        "postgres",  # test_readiness: a PostgreSQL cluster of its own
        "redis_server",  # test_readiness: a redis-server of its own
    }
)
# ``db_url`` asks for its backend with ``request.getfixturevalue``, which the fixture closure does
# not show, so its PostgreSQL variant is recognised by the parameter instead.
SERVICE_PARAMS = {"db_url": "postgresql"}
# Names a test's own code calls to start a process (gunicorn, ``notifier dev``, the emulator):
# those tests need no fixture to reach a server, so their code is what gives them away.
PROCESS_STARTERS = frozenset(
    {"notifier_process", "Popen", "start_emulator_process", "run_notifier_dev"}
)


def needs_services(item: pytest.Item) -> bool:
    """Whether ``item`` reaches PostgreSQL, Redis, a worker, the emulator, a browser or a server."""
    if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    if any(params.get(name) == value for name, value in SERVICE_PARAMS.items()):
        return True
    function = getattr(item, "function", None)
    code = getattr(function, "__code__", None)
    return code is not None and bool(PROCESS_STARTERS.intersection(code.co_names))


def pytest_collection_modifyitems(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    """Mark every test that needs a service ``services`` (see :func:`needs_services`)."""
    for item in items:
        if needs_services(item):
            item.add_marker(pytest.mark.services)


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


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own, on NOTIFIER_TEST_AMQP_URL's server, deleted afterwards.

    A vhost isolates queues, exchanges and messages entirely, so other test runs on the shared
    server never take this test's messages, and deleting it stops nothing anyone else uses.
    Created with ``rabbitmqctl`` (the management plugin is not assumed).
    """
    parts = urlsplit(AMQP_URL)
    vhost = f"notifier-t-{secrets.token_hex(4)}"
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 2):
            pass
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl(
            "set_permissions", "-p", vhost, unquote(parts.username or "guest"), ".*", ".*", ".*"
        )
    except (OSError, subprocess.SubprocessError) as exc:
        service_unavailable("RabbitMQ", f"{type(exc).__name__}: {exc}".splitlines()[0])
    yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    _rabbitmqctl("delete_vhost", vhost)


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
def keys(runtime: Runtime) -> dict[str, str]:
    """An editor, an ops and an admin API key on ``runtime``, by role; send with ``auth(key)``."""
    return api_keys(runtime)


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    flask_app = create_app(runtime=runtime)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
