"""The real pipeline: PostgreSQL, Redis as broker and counters, Celery workers, the FCM emulator.

The core cases also run with RabbitMQ as the broker (:data:`on_both_brokers`), each in a vhost
of its own; Redis still keeps the counters and limits there.

Workers are separate processes started with ``notifier worker`` and the same NOTIFIER_*
settings a deployment would use; the test process plays the API (through the Flask test client)
and, where a test needs it to, the beat (by calling the sweep the beat would schedule).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Alert
from notifier.core.settings import Settings, load_settings
from notifier.emulator.launcher import start_emulator_process, stop_emulator_process
from notifier.http.app import create_app
from notifier.pipeline.sweeper import sweep
from notifier.runtime import Runtime
from tests.conftest import REDIS_URL, service_unavailable
from workers.celery_app import make_celery
from workers.publish import CeleryPublisher

BROKER_DB = 14  # the broker's Redis database; counters and limits use NOTIFIER_TEST_REDIS_URL's

# The pipeline's core cases (exactly once, a worker killed, the broker down, duplicate messages)
# run on each broker a deployment may choose; the rest of the suite stays on Redis to keep CI short.
on_both_brokers = pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)

# Nothing listens on port 1: a broker that is down, for each transport.
DOWN_BROKER_URLS = {"redis": "redis://127.0.0.1:1/0", "amqp": "amqp://guest:guest@127.0.0.1:1//"}


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """The broker a stack uses: Redis unless the test is parametrized by :data:`on_both_brokers`."""
    return str(getattr(request, "param", "redis"))


def _redis_db_url(db: int) -> str:
    base = REDIS_URL.rsplit("/", 1)[0]
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    proc, base_url = start_emulator_process()
    yield base_url
    stop_emulator_process(proc)


class Emulator:
    """The emulator's inspection API, as a test reads it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        self._call("DELETE", "/emulator/messages")
        self._call("POST", "/emulator/faults", {})
        self._call("POST", "/emulator/quota", {"per_minute": None})
        self._call("POST", "/emulator/oauth/revoked", {"accounts": []})

    def faults(self, **rates: float) -> None:
        self._call("POST", "/emulator/faults", rates)

    def quota(self, per_minute: int | None) -> None:
        """FCM's per-project quota over any 60 s; None lifts it (and empties the windows)."""
        self._call("POST", "/emulator/quota", {"per_minute": per_minute})

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/emulator/stats"))

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self._call("GET", f"/emulator/messages?since={since}&limit=10000")
            items = page["messages"] if isinstance(page, dict) else page
            if not items:
                return found
            found.extend(items)
            since = max(int(m["seq"]) for m in items)

    def tokens(self) -> list[str]:
        return [m["token"] for m in self.messages() if "token" in m]


@dataclass
class Stack:
    """Everything a pipeline test touches: settings, API client, workers, emulator."""

    settings: Settings
    runtime: Runtime
    client: FlaskClient
    emulator: Emulator
    editor_key: str
    env: dict[str, str]
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, concurrency: int = 2, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {**self.env, **{f"NOTIFIER_{k.upper()}": v for k, v in extra_env.items()}}
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "notifier",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool children at once, as an OOM kill or a crash would."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()

    def worker_logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log"))
        )

    def post_alert(self, **body: Any) -> dict[str, Any]:
        payload = {"headline": "Breaking", "url": "https://news.example/a", "topics": ["israel"]}
        payload.update(body)
        response = self.client.post(
            "/v1/alerts", json=payload, headers={"Authorization": f"Bearer {self.editor_key}"}
        )
        assert response.status_code == 201, response.json
        return dict(response.json)

    def alert(self, alert_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {self.editor_key}"}
        )
        assert response.status_code == 200
        return dict(response.json)

    def sweep(self) -> None:
        from datetime import timedelta

        sweep(
            self.runtime.sessions,
            self.runtime.publisher,
            requeue_after=timedelta(seconds=self.settings.requeue_after_seconds),
        )

    def wait_for_status(
        self,
        alert_id: str,
        statuses: tuple[str, ...] = ("sent", "failed", "expired", "cancelled"),
        timeout: float = 60,
        sweeping: bool = False,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.alert(alert_id)
            if view["status"] in statuses:
                return view
            if sweeping:
                self.sweep()
            time.sleep(0.2)
        raise AssertionError(
            f"alert {alert_id} still {self.alert(alert_id)} after {timeout} s\n"
            + self.worker_logs()[-4000:]
        )

    def alert_row(self, alert_id: str) -> Alert:
        with self.runtime.sessions() as session:
            row = session.scalar(select(Alert).where(Alert.id == alert_id))
            assert row is not None
            return row


@pytest.fixture
def stack_factory(
    pg_url: str, emulator: str, tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    # One vhost per test: every stack of the test (a down one, then a healthy one) shares it.
    broker_url = (
        str(request.getfixturevalue("amqp_url")) if broker == "amqp" else _redis_db_url(BROKER_DB)
    )

    prefixes: list[str] = []

    def make(**settings_env: str) -> Stack:
        # Keys of their own in Redis (queues, quota bucket, limits): another test run on this
        # machine, or a previous stack of this test, never takes or sees this stack's messages.
        prefix = f"t{secrets.token_hex(4)}:"
        prefixes.append(prefix)
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            service_unavailable("Redis", str(exc))
        env_values = {
            "DATABASE_URL": pg_url,
            "BROKER_URL": broker_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "FCM_ENDPOINT": emulator,
            "DATA_DIR": str(tmp_path / "var"),
            "LOG_FORMAT": "json",
            "LEASE_SECONDS": "10",
            "REQUEUE_AFTER_SECONDS": "2",
            "RATE_LIMITS": "subscriptions=100000/minute;lookup=100000/minute;events=100000/minute",
        }
        env_values.update({k.upper(): v for k, v in settings_env.items()})
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env.update({f"NOTIFIER_{k}": v for k, v in env_values.items()})
        settings = load_settings({k: v for k, v in env.items() if k.startswith("NOTIFIER_")})
        runtime = Runtime.start(settings)
        runtime.publisher = CeleryPublisher(make_celery(settings))
        client = create_app(runtime=runtime).test_client()
        with transaction(runtime.sessions) as session:
            key, _ = create_key(session, "editor", "pipeline tests")
        em = Emulator(emulator)
        em.reset()
        stack = Stack(settings, runtime, client, em, key, env, tmp_path)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop_workers()
        stack.emulator.reset()
        stack.runtime.close()
    for url in (_redis_db_url(BROKER_DB), REDIS_URL):
        client = redis.Redis.from_url(url)
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()


def subscribe(stack: Stack, token: str, topics: list[str], platform: str = "android") -> None:
    response = stack.client.post(
        "/v1/subscriptions", json={"token": token, "platform": platform, "topics": topics}
    )
    assert response.status_code in (200, 201), response.json


def subscribe_many(stack: Stack, prefix: str, count: int, topics: list[str]) -> list[str]:
    """Bulk-create subscribed devices straight in the database (fast for large audiences)."""
    from notifier.subscriptions.service import subscribe as subscribe_device

    tokens = [f"{prefix}-{i:06d}-APA91b{'x' * 20}" for i in range(count)]
    with transaction(stack.runtime.sessions) as session:
        for tok in tokens:
            subscribe_device(session, token=tok, platform="android", topics=topics)
    return tokens
