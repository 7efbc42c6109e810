"""Fault 13: API key brute force from one address is slowed, without locking out the real key.

Wrong keys are counted per address across every API process (Redis when configured, else the
machine-wide SQLite store); past ``auth_failures`` they get 429 with Retry-After. A valid key is
never refused by that counter, whether it comes from elsewhere or from the attacking address
itself (the newsroom's editors may share an office address with a misconfigured client).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings

ATTACKER = "203.0.113.66"
EDITOR_ELSEWHERE = "198.51.100.7"
ROUTE = "/v1/alerts"


def clients(settings_env: dict[str, str], tmp_path: Path) -> tuple[FlaskClient, FlaskClient, str]:
    """Two API processes on one store, and a valid editor key."""
    settings = make_settings(tmp_path, **settings_env)
    runtime = Runtime.start(settings)
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "newsroom")
    first, second = create_app(runtime=runtime), create_app(runtime=runtime)
    return first.test_client(), second.test_client(), key


def get(client: FlaskClient, key: str, address: str) -> int:
    response = client.get(
        ROUTE, headers={"Authorization": f"Bearer {key}"}, environ_base={"REMOTE_ADDR": address}
    )
    return response.status_code


def guess(n: int) -> str:
    return f"ntf_deadbeef_guess{n:04d}xxxxxxxxxxxxxxxxxxxxxxxxxxxx"


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, db_url: str) -> dict[str, str]:
    env = {"database_url": db_url, "rate_limits": "auth_failures=5/minute"}
    if request.param == "redis":
        env["redis_url"] = request.getfixturevalue("redis_url")
    return env


def test_repeated_wrong_keys_from_one_address_turn_into_429_with_retry_after_across_processes(
    store: dict[str, str], tmp_path: Path
) -> None:
    first, second, _ = clients(store, tmp_path)
    statuses = [get((first, second)[n % 2], guess(n), ATTACKER) for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    response = first.get(
        ROUTE,
        headers={"Authorization": f"Bearer {guess(99)}"},
        environ_base={"REMOTE_ADDR": ATTACKER},
    )
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["status"] == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_real_key_keeps_working_elsewhere_and_from_the_attacking_address(
    store: dict[str, str], tmp_path: Path
) -> None:
    first, second, key = clients(store, tmp_path)
    for n in range(10):
        get(first, guess(n), ATTACKER)
    assert get(second, guess(11), ATTACKER) == 429
    assert get(second, key, EDITOR_ELSEWHERE) == 200
    assert get(first, guess(12), EDITOR_ELSEWHERE) == 401  # another address has its own count
    assert get(first, key, ATTACKER) == 200  # a valid key is never refused by the counter


def test_requests_without_a_key_are_not_counted_as_guesses(
    store: dict[str, str], tmp_path: Path
) -> None:
    first, _, _ = clients(store, tmp_path)
    statuses = [
        first.get(ROUTE, environ_base={"REMOTE_ADDR": ATTACKER}).status_code for _ in range(8)
    ]
    assert statuses == [401] * 8


def test_the_presented_key_is_never_logged(
    db_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    env = {"database_url": db_url, "rate_limits": "auth_failures=2/minute", "log_level": "DEBUG"}
    first, _, key = clients(env, tmp_path)
    for n in range(4):
        get(first, guess(n), ATTACKER)
    get(first, key, ATTACKER)
    logged = capfd.readouterr().err
    assert '"status": 429' in logged and '"status": 200' in logged  # the request log did run
    assert "guess" not in logged
    assert key not in logged
