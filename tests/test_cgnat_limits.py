"""Fault 14: many readers behind one address (carrier-grade NAT) after a big alert.

A carrier puts thousands of readers behind one IPv4 address, and a big alert makes many of their
apps refresh their subscription within a minute. With the default limits, distinct devices from
one address are served (the per-address ``subscriptions`` ceiling is 6,000 a minute), while one
device token hammering is slowed by ``subscription_token`` (20 a minute by default), whichever
subscription write it uses. The token is counted under a digest, never in clear.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from notifier.core.settings import DEFAULT_RATE_LIMITS
from notifier.http.app import create_app
from notifier.http.limits import token_key
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import subscription, token

CARRIER = "100.64.0.1"  # RFC 6598 shared address space, what CGNAT hands out


def client_for(tmp_path: Path, **env: str) -> FlaskClient:
    runtime = Runtime.start(make_settings(tmp_path, **env))
    return create_app(runtime=runtime).test_client()


def post(client: FlaskClient, body: dict[str, object], address: str = CARRIER) -> int:
    return client.post(
        "/v1/subscriptions", json=body, environ_base={"REMOTE_ADDR": address}
    ).status_code


def test_a_thousand_distinct_devices_behind_one_address_in_a_minute_are_all_served(
    db_url: str, tmp_path: Path
) -> None:
    client = client_for(tmp_path, database_url=db_url)
    started = time.monotonic()
    statuses = [post(client, subscription()) for _ in range(1000)]
    assert time.monotonic() - started < 60  # all inside one window of the per-minute limits
    assert statuses == [201] * 1000


def test_one_token_hammering_is_slowed_while_its_neighbours_are_served(
    db_url: str, tmp_path: Path
) -> None:
    client = client_for(tmp_path, database_url=db_url)
    hammer = subscription()
    statuses = [post(client, hammer) for _ in range(25)]
    assert statuses == [201] + [200] * 19 + [429] * 5
    response = client.post("/v1/subscriptions", json=hammer, environ_base={"REMOTE_ADDR": CARRIER})
    assert response.mimetype == "application/problem+json"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert post(client, subscription()) == 201  # a neighbour behind the same address


def test_the_token_limit_covers_unsubscribe_and_rotation_too(db_url: str, tmp_path: Path) -> None:
    client = client_for(tmp_path, database_url=db_url, rate_limits="subscription_token=3/minute")
    body = subscription()
    headers = {"REMOTE_ADDR": CARRIER}
    assert post(client, body) == 201
    unsubscribe = {"token": body["token"], "topics": body["topics"]}
    assert (
        client.delete("/v1/subscriptions", json=unsubscribe, environ_base=headers).status_code
        == 204
    )
    rotate = {"old_token": body["token"], "new_token": token()}
    assert (
        client.put("/v1/subscriptions/token", json=rotate, environ_base=headers).status_code == 200
    )
    assert post(client, body) == 429


def test_the_per_address_ceiling_still_applies_as_before(db_url: str, tmp_path: Path) -> None:
    client = client_for(tmp_path, database_url=db_url, rate_limits="subscriptions=3/minute")
    assert [post(client, subscription()) for _ in range(4)] == [201, 201, 201, 429]
    assert DEFAULT_RATE_LIMITS["subscriptions"] == "6000/minute"


def test_the_token_is_counted_under_a_digest_in_redis(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    client = client_for(tmp_path, database_url=db_url, redis_url=redis_url)
    body = subscription()
    assert post(client, body) == 201
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(count=1000)]
    mine = [k for k in keys if token_key(body["token"]) in k]
    assert mine, "no counter for the token's digest"
    assert not [k for k in keys if body["token"] in k]


def test_the_token_is_counted_under_a_digest_in_the_embedded_store(
    db_url: str, tmp_path: Path
) -> None:
    client = client_for(tmp_path, database_url=db_url)
    body = subscription()
    assert post(client, body) == 201
    with sqlite3.connect(tmp_path / "var" / "rate-limits.db") as db:
        keys = [row[0] for row in db.execute("SELECT key FROM windows")]
    assert any(token_key(body["token"]) in k for k in keys)
    assert not any(body["token"] in k for k in keys)


@pytest.mark.parametrize("scope", ["subscription_token", "auth_failures"])
def test_new_rate_limit_keys_are_read_from_the_same_variable(scope: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limits=f"subscriptions=10/minute;{scope}=7/minute")
    assert settings.rate_limits[scope] == "7/minute"
    assert settings.rate_limits["subscriptions"] == "10/minute"
