"""Rate limits hold across the API's processes in the embedded default (no Redis).

gunicorn runs several workers; each builds its own app. Counting in process memory let 120
requests through a limit of 60 a minute and made ``X-RateLimit-Remaining`` jump. Two apps on
the same settings stand in for two workers here, and forked processes hammer the counter file.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from notifier.http.app import create_app
from notifier.http.limits import SQLiteStorage, storage_uri
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import token


@pytest.fixture
def two_workers(sqlite_file_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    settings = make_settings(tmp_path, database_url=sqlite_file_url, rate_limits="lookup=3/minute")
    assert settings.redis_url is None
    runtimes = [Runtime.start(settings), Runtime.start(settings)]
    yield create_app(runtime=runtimes[0]), create_app(runtime=runtimes[1])
    for runtime in runtimes:
        runtime.close()


def test_two_workers_share_one_limit_and_one_remaining_count(
    two_workers: tuple[Flask, Flask],
) -> None:
    first, second = (app.test_client() for app in two_workers)
    body = {"token": token()}
    answers = [
        client.post("/v1/subscriptions/lookup", json=body)
        for client in (first, second, first, second)
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[3].headers["Retry-After"]
    assert answers[3].mimetype == "application/problem+json"


def _hit(uri: str, times: int) -> int:
    storage = SQLiteStorage(uri)
    last = 0
    for _ in range(times):
        last = storage.incr("k", expiry=60)
    return last


def test_concurrent_processes_never_lose_a_hit(tmp_path: Path) -> None:
    uri = storage_uri(make_settings(tmp_path))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.starmap(_hit, [(uri, 50)] * 4)
    assert SQLiteStorage(uri).get("k") == 200


def test_a_window_starts_again_once_it_expires(tmp_path: Path) -> None:
    storage = SQLiteStorage(storage_uri(make_settings(tmp_path)))
    assert storage.incr("k", expiry=0) == 1
    assert storage.get("k") == 0  # expired at once
    assert storage.incr("k", expiry=60) == 1
    assert storage.incr("k", expiry=60) == 2
    storage.clear("k")
    assert storage.get("k") == 0


def test_an_unwritable_counter_file_serves_without_limits_rather_than_failing(
    sqlite_file_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the data dir should be")
    settings = make_settings(tmp_path, database_url=sqlite_file_url, rate_limits="lookup=1/minute")
    settings = settings.model_copy(update={"data_dir": blocked})
    runtime = Runtime.start(settings)
    try:
        client = create_app(runtime=runtime).test_client()
        body = {"token": token()}
        statuses = [client.post("/v1/subscriptions/lookup", json=body).status_code for _ in "ab"]
    finally:
        runtime.close()
    assert statuses == [404, 404]
