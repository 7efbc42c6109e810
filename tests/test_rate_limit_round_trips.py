"""What one limited request costs the rate limiter's store, pinned so that it cannot creep back.

The documented ``X-RateLimit-Limit/Remaining/Reset`` headers need the window's stats after the
hit; with the stock fixed window that was a GET and a TTL on Redis per request on top of the
increments (issue 12). The counting strategy in ``notifier.http.limits`` learns the count and
the expiry from the increment itself, and a subscribe counts the route's per-address limit and
the per-token limit in one script: one round trip to Redis per subscription write (it was two).
Commands are counted by wrapping this app's own Redis client (not INFO commandstats, which
other clients of the shared server would disturb).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from notifier.http.app import create_app
from notifier.http.limits import (
    ROUTE_LIMITS,
    CountingFixedWindow,
    RouteLimits,
    SQLiteStorage,
    _Script,
)
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import subscription


def limiter_of(app: Flask) -> RouteLimits:
    limiter = app.extensions[ROUTE_LIMITS]
    assert isinstance(limiter, RouteLimits)
    return limiter


@pytest.fixture
def redis_app(db_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = make_settings(
        tmp_path,
        database_url=db_url,
        redis_url=redis_url,
        rate_limits="subscriptions=3/minute;subscription_token=3/minute",
    )
    runtime = Runtime.start(settings)
    yield create_app(runtime=runtime)
    runtime.close()


@pytest.fixture
def commands(redis_app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Redis commands the limiter's store is sent, by name, from now on.

    Counted on every connection of the store's pool class (the limiter sends its scripts on
    connections of its own, outside the pool), so whatever path a command takes, it counts.
    """
    strategy = limiter_of(redis_app).strategy
    assert isinstance(strategy, CountingFixedWindow)
    connection_class = strategy.storage.get_connection().connection_pool.connection_class  # type: ignore[attr-defined]
    sent: list[str] = []
    send = connection_class.send_command

    def counting(self: Any, *args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return send(self, *args, **options)

    monkeypatch.setattr(connection_class, "send_command", counting)
    return sent


def test_a_subscribe_costs_redis_one_script_for_both_its_limits_and_nothing_for_the_headers(
    redis_app: Flask, commands: list[str]
) -> None:
    client = redis_app.test_client()
    address = {"REMOTE_ADDR": "192.0.2.10"}
    # The first call of each script loads it into Redis; a running server has done that.
    assert (
        client.post("/v1/subscriptions", json=subscription(), environ_base=address).status_code
        == 201
    )
    commands.clear()

    answer = client.post("/v1/subscriptions", json=subscription(), environ_base=address)

    assert answer.status_code == 201
    assert commands == ["EVALSHA"], commands
    assert answer.headers["X-RateLimit-Limit"] == "3"
    assert answer.headers["X-RateLimit-Remaining"] == "1"
    assert 0 < int(answer.headers["X-RateLimit-Reset"]) - time.time() <= 61


def test_the_refused_request_still_carries_its_headers_and_retry_after(
    redis_app: Flask, commands: list[str]
) -> None:
    client = redis_app.test_client()
    address = {"REMOTE_ADDR": "192.0.2.11"}
    answers = [
        client.post("/v1/subscriptions", json=subscription(), environ_base=address)
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert 0 < int(answers[3].headers["Retry-After"]) <= 61
    assert "GET" not in commands and "TTL" not in commands, commands


def test_the_embedded_store_returns_the_count_and_the_expiry_in_one_statement(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(f"notifier-sqlite://{tmp_path / 'limits.db'}")
    before = time.time()
    first = storage.incr_with_expiry("k", expiry=60)
    second = storage.incr_with_expiry("k", expiry=60)
    assert (first[0], second[0]) == (1, 2)
    assert first[1] == second[1] == storage.get_expiry("k")
    assert before + 60 <= first[1] <= time.time() + 60


def test_counting_both_limits_at_once_keeps_which_requests_each_counts_and_refuses(
    redis_app: Flask,
) -> None:
    """A bad body counts against its address; a request over the route limit gets the route's
    429 whatever its body, and is not counted against its token (as when the route limit was
    counted before the view, in its own round trip)."""
    client = redis_app.test_client()
    first, second = {"REMOTE_ADDR": "192.0.2.12"}, {"REMOTE_ADDR": "192.0.2.13"}
    body = subscription()

    def post(address: dict[str, str], **kwargs: Any) -> Any:
        return client.post("/v1/subscriptions", environ_base=address, **kwargs)

    malformed = post(first, data="{", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.headers["X-RateLimit-Remaining"] == "2"
    assert [post(first, json=body).status_code for _ in "ab"] == [201, 200]  # token: 2 of 3
    refused = [post(first, data="{", content_type="application/json"), post(first, json=body)]
    assert [a.status_code for a in refused] == [429, 429]
    assert [a.json["detail"] for a in refused] == ["3 per 1 minute"] * 2  # type: ignore[index]
    assert all(0 < int(a.headers["Retry-After"]) <= 61 for a in refused)
    # The refused requests did not use the token's third write; a second address can.
    assert post(second, json=body).status_code == 200
    by_token = post(second, json=body)
    assert by_token.status_code == 429
    assert "this device" in by_token.json["detail"]  # type: ignore[index]
    assert by_token.headers["X-RateLimit-Remaining"] == "1"


def test_a_script_redis_does_not_have_is_sent_again_by_its_source(
    redis_app: Flask, commands: list[str]
) -> None:
    """After a Redis restart (or SCRIPT FLUSH) the limiter's scripts are unknown to it: the first
    call sends the source and later ones the digest again. A script of this test's own stands
    in, so nothing is flushed on the shared server."""
    strategy = limiter_of(redis_app).strategy
    client = strategy.storage.get_connection()  # type: ignore[attr-defined]
    script = _Script(client, f"-- {secrets.token_hex(8)}\nreturn {{tonumber(ARGV[1]) + 1, 7}}")

    assert script([], [41]) == [42, 7]
    assert script([], [1]) == [2, 7]
    scripts = [name for name in commands if name.startswith("EVAL")]  # not the handshake
    assert scripts == ["EVALSHA", "EVAL", "EVALSHA"], commands
