"""/readyz flips to 503 when the PostgreSQL or the Redis it depends on stops, and back.

These tests start a PostgreSQL cluster and a Redis server of their own (on free ports) so they
can stop them without disturbing the shared services the rest of the suite uses.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings, service_unavailable
from tests.support import free_port
from tests.throwaway_pg import ThrowawayPostgres, running_throwaway_postgres


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    with running_throwaway_postgres("notifier-readyz-pg-") as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        service_unavailable("redis-server", "not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield proc, url
    proc.kill()
    proc.wait()


def test_readiness_follows_postgres_and_redis(
    tmp_path: Path, postgres: ThrowawayPostgres, redis_server: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, redis_url = redis_server
    engine = make_engine(postgres.url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = make_settings(
        tmp_path, database_url=postgres.url, broker_url=redis_url, redis_url=redis_url
    )
    client = create_app(runtime=Runtime.start(settings)).test_client()
    assert client.get("/readyz").status_code == 200

    postgres.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json["checks"]["database"].startswith("unreachable")
    assert client.get("/livez").status_code == 200

    postgres.start()
    assert client.get("/readyz").status_code == 200

    proc.kill()
    proc.wait()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json["checks"]["broker"].startswith("unreachable")
    assert down.json["checks"]["redis"].startswith("unreachable")


def test_a_subscription_while_postgres_is_down_is_told_to_retry_not_a_server_error(
    tmp_path: Path, postgres: ThrowawayPostgres
) -> None:
    engine = make_engine(postgres.url)
    migrate.upgrade(engine)
    engine.dispose()
    client = create_app(
        runtime=Runtime.start(make_settings(tmp_path, database_url=postgres.url))
    ).test_client()
    body = {"token": "tok-" + "a" * 60, "platform": "android", "topics": ["breaking"]}
    assert client.post("/v1/subscriptions", json=body).status_code == 201

    postgres.stop()
    down = client.post("/v1/subscriptions", json=body)
    assert down.status_code == 503
    assert down.headers["Content-Type"] == "application/problem+json"
    assert int(down.headers["Retry-After"]) > 0

    postgres.start()
    assert client.post("/v1/subscriptions", json=body).status_code == 200
