"""Liveness and readiness: readiness is 503 while the database or the broker is unreachable."""

from __future__ import annotations

from pathlib import Path

from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings


def test_ready_when_database_and_broker_answer(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "broker": "ok"}


def test_live_even_without_dependencies(tmp_path: Path) -> None:
    """Nothing answers on port 1: liveness stays up while readiness reports both down."""
    settings = make_settings(
        tmp_path,
        database_url="postgresql://postgres@127.0.0.1:1/test",
        broker_url="redis://127.0.0.1:1/0",
    )
    runtime = Runtime.start(settings, prepare_database=False)
    try:
        client = create_app(runtime=runtime).test_client()
        live = client.get("/livez")
        ready = client.get("/readyz")
    finally:
        runtime.close()
    assert (live.status_code, live.json) == (200, {"status": "ok"})
    assert ready.status_code == 503
    assert ready.json["checks"]["database"].startswith("unreachable")
    assert ready.json["checks"]["broker"].startswith("unreachable")


def test_not_ready_when_the_broker_is_unreachable(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, database_url=db_url, broker_url="redis://127.0.0.1:1/0")
    client = create_app(runtime=Runtime.start(settings)).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["broker"].startswith("unreachable")


def test_ready_with_redis_broker_and_redis(tmp_path: Path, db_url: str, redis_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url=db_url, broker_url=redis_url, redis_url=redis_url
    )
    client = create_app(runtime=Runtime.start(settings)).test_client()
    assert client.get("/readyz").json["checks"] == {"database": "ok", "broker": "ok", "redis": "ok"}
