"""Soak run: minutes of mixed traffic and injected faults, then every alert's counts and every
process's memory checked.

Run by hand (not a test). Real parts only: a throwaway PostgreSQL schema, Redis as broker and
counters (keys under a prefix of this run), the HTTP API under gunicorn (`notifier api`), two
`notifier worker` processes, `notifier beat`, and the FCM emulator over HTTP. While it runs:

- readers subscribe, change topics, unsubscribe and rotate tokens over HTTP (some with a daily
  cap of one, some with tokens FCM calls UNREGISTERED, so suppressed and pruned devices occur);
- editors post alerts over HTTP (some cancelled a second later) and the CMS sends signed
  `article.published` webhooks, taking turns every ``--alert-every`` seconds;
- FCM misbehaves on a one-minute cycle: 500/503s, then 429s with Retry-After, then 800 ms of
  latency, each for 10 s; at a third and at two thirds of the run a worker is SIGKILLed and
  started again 5 s later.

At the end the faults are lifted, the load stops, and the run waits for every alert to settle.
It then prints, per alert, whether audience = sent + failed + pruned + cancelled + suppressed +
pending with pending 0, and whether each counter equals the deliveries recorded in that state;
and, per process, its resident memory (first sample after warm-up, last, peak, and the slope of
a least-squares line through the samples). Exit status 1 if any alert's counts do not add up.

    .venv/bin/python bench/soak.py                          # 10 minutes, 10,000 devices
    .venv/bin/python bench/soak.py --minutes 2 --devices 3000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis
import requests
from _common import log, rss_kib
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from notifier.core import migrate
from notifier.core.apikeys import create_key
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import Alert, Delivery
from notifier.core.settings import load_settings, normalise_database_url
from notifier.emulator.launcher import start_emulator_process, stop_emulator_process
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import import_devices

SECRET = "whsec_" + "c29hay1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
TOPICS = ["israel", "world", "breaking", "politics"]
FINISHED = {"sent", "failed", "expired", "cancelled"}
# (second of each minute the fault starts, what the emulator is told, a name for the progress line)
FAULT_CYCLE: list[tuple[int, dict[str, float], str]] = [
    (0, {"unavailable_rate": 0.3, "internal_rate": 0.1}, "500/503s"),
    (10, {}, "none"),
    (20, {"quota_rate": 0.3, "retry_after_seconds": 3}, "429s"),
    (30, {}, "none"),
    (40, {"latency_ms": 800}, "latency"),
    (50, {}, "none"),
]
# The emulator keeps the last N messages it accepted: small, so its memory is flat once the
# inbox is full (within the first minute) and a leak would still show.
EMULATOR_INBOX = 10_000
WARM_UP = 60.0  # a process's memory is judged from this many seconds after it started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Series:
    """One process's memory over time: (seconds since the run's start, KiB)."""

    born: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    def judged(self) -> list[tuple[float, int]]:
        """The samples after the process warmed up (imports, pools, first tasks)."""
        late = [s for s in self.samples if s[0] >= self.born + WARM_UP]
        if len(late) >= 3:
            return late
        return [s for s in self.samples if s[0] >= self.born + 10]  # short-lived: killed

    def slope_mib_per_min(self) -> float:
        points = self.judged()
        if len(points) < 2:
            return 0.0
        n = len(points)
        mean_t = sum(t for t, _ in points) / n
        mean_m = sum(m for _, m in points) / n
        var = sum((t - mean_t) ** 2 for t, _ in points)
        cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
        return (cov / var) * 60 / 1024 if var else 0.0


@dataclass
class Load:
    """What the traffic threads did, for the progress lines and the summary."""

    statuses: Counter[str] = field(default_factory=Counter)
    alerts: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses[f"{kind} {status}"] += 1


class Processes:
    """The API, workers, beat and emulator of the run, started and stopped by id."""

    def __init__(self, env: dict[str, str], tmp: Path, clock: Callable[[], float]) -> None:
        self.env, self.tmp, self.clock = env, tmp, clock
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        # Sampled, but started and stopped by their own launcher (the emulator).
        self.watched: dict[str, subprocess.Popen[bytes]] = {}
        self.memory: dict[str, Series] = defaultdict(Series)
        self.generation: Counter[str] = Counter()
        self.last_sample = -1e9

    def start(self, role: str, *args: str) -> None:
        self.generation[role] += 1
        label = (
            role if self.generation[role] == 1 else f"{role} (restart {self.generation[role] - 1})"
        )
        self.memory[label].born = self.clock()
        out = open(self.tmp / f"{role}-{self.generation[role]}.log", "wb")  # noqa: SIM115
        self.running[label] = subprocess.Popen(
            [sys.executable, "-m", "notifier", *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def watch(self, label: str, proc: subprocess.Popen[bytes]) -> None:
        self.watched[label] = proc

    def kill(self, role: str) -> None:
        """SIGKILL the newest process of ``role`` and its children, as an OOM kill would."""
        label = [name for name in self.running if name.split(" (")[0] == role][-1]
        proc = self.running.pop(label)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def sample(self, force: bool = False) -> None:
        """Every process's RSS, at most every 5 s (so each stretch of the run weighs the same)."""
        now = self.clock()
        if not force and now - self.last_sample < 4.9:
            return
        self.last_sample = now
        for label, proc in {**self.running, **self.watched}.items():
            if proc.poll() is None:
                self.memory[label].samples.append((now, rss_kib(proc.pid)))

    def exited(self) -> list[str]:
        everything = {**self.running, **self.watched}
        return [label for label, proc in everything.items() if proc.poll() is not None]

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.running.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def emulator_faults(base_url: str, faults: dict[str, float]) -> None:
    request = urllib.request.Request(
        f"{base_url}/emulator/faults",
        data=json.dumps(faults).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


def new_token(rng: random.Random) -> str:
    # About 2% of new readers hold a token FCM no longer knows (the emulator's convention).
    prefix = "unregistered-" if rng.random() < 0.02 else "soak-"
    return f"{prefix}{secrets.token_hex(12)}:APA91b{'x' * 60}"


def readers(api: str, load: Load, stop: threading.Event, per_second: float) -> None:
    """Subscribe, change topics, unsubscribe and rotate tokens, as apps do."""
    rng = random.Random(1)
    session = requests.Session()
    while not stop.is_set():
        roll = rng.random()
        with load.lock:
            known = len(load.tokens)
        try:
            if roll < 0.7 or known < 50:
                token = new_token(rng)
                body: dict[str, object] = {
                    "token": token,
                    "platform": rng.choice(["android", "ios", "web"]),
                    "topics": rng.sample(TOPICS, rng.randint(1, 3)),
                }
                if rng.random() < 0.1:
                    body["max_per_day"] = 1  # suppressed (daily_cap) from their second alert
                response = session.post(f"{api}/v1/subscriptions", json=body, timeout=30)
                if response.status_code in (200, 201):
                    with load.lock:
                        load.tokens.append(token)
                load.count("subscribe", response.status_code)
            elif roll < 0.85:
                with load.lock:
                    token = rng.choice(load.tokens)
                body = {"token": token, "platform": "android", "topics": [rng.choice(TOPICS)]}
                response = session.post(f"{api}/v1/subscriptions", json=body, timeout=30)
                load.count("topics", response.status_code)
            elif roll < 0.95:
                with load.lock:
                    token = load.tokens.pop(rng.randrange(len(load.tokens)))
                response = session.delete(
                    f"{api}/v1/subscriptions", json={"token": token}, timeout=30
                )
                load.count("unsubscribe", response.status_code)
            else:
                with load.lock:
                    index = rng.randrange(len(load.tokens))
                    old = load.tokens[index]
                fresh = new_token(rng).replace("unregistered-", "soak-")
                response = session.put(
                    f"{api}/v1/subscriptions/token",
                    json={"old_token": old, "new_token": fresh},
                    timeout=30,
                )
                if response.status_code < 300:
                    with load.lock:
                        if index < len(load.tokens) and load.tokens[index] == old:
                            load.tokens[index] = fresh
                load.count("rotate", response.status_code)
        except requests.RequestException as exc:
            load.count(f"readers {type(exc).__name__}", 0)
        stop.wait(1 / per_second)


def newsroom(api: str, key: str, load: Load, stop: threading.Event, every: float) -> None:
    """Alerts from editors (some cancelled) and from the CMS's webhooks, taking turns."""
    rng = random.Random(2)
    session = requests.Session()
    n = 0
    while not stop.wait(every if n else 2.0):
        n += 1
        topics = rng.sample(TOPICS, rng.randint(1, 2))
        try:
            if n % 2:
                response = session.post(
                    f"{api}/v1/alerts",
                    json={
                        "headline": f"Soak alert {n}",
                        "url": f"https://news.example/soak/{n}",
                        "topics": topics,
                    },
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
                load.count("alert", response.status_code)
                alert_id = response.json().get("id") if response.status_code == 201 else None
                if alert_id and n % 5 == 0:  # an editor thinks better of it
                    time.sleep(1)
                    cancel = session.post(
                        f"{api}/v1/alerts/{alert_id}/cancel",
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=30,
                    )
                    load.count("cancel", cancel.status_code)
            else:
                webhook_id = f"msg_soak_{n}"
                body = json.dumps(
                    {
                        "type": "article.published",
                        "data": {
                            "id": f"soak-{n}",
                            "url": f"https://news.example/soak/{n}",
                            "headline": f"Soak story {n}",
                            "topics": topics,
                            "breaking": True,
                        },
                    }
                ).encode()
                ts = int(time.time())
                response = session.post(
                    f"{api}/v1/events",
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        "webhook-id": webhook_id,
                        "webhook-timestamp": str(ts),
                        "webhook-signature": sign_webhook(SECRET, webhook_id, ts, body),
                    },
                    timeout=30,
                )
                load.count("event", response.status_code)
                alert = response.json().get("alert") if response.status_code == 202 else None
                alert_id = alert.get("id") if isinstance(alert, dict) else None
            if alert_id:
                with load.lock:
                    load.alerts.append(alert_id)
        except (requests.RequestException, ValueError) as exc:
            load.count(f"newsroom {type(exc).__name__}", 0)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def api_answers(api: str) -> bool:
    try:
        return requests.get(f"{api}/livez", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def alert_books(sessions: sessionmaker[Session], alert_ids: list[str]) -> list[dict[str, object]]:
    """Each alert's counters beside the deliveries recorded in each state."""
    books = []
    with sessions() as session:
        for alert_id in alert_ids:
            alert = session.get(Alert, alert_id)
            rows = dict(
                session.execute(
                    select(Delivery.status, func.count())
                    .where(Delivery.alert_id == alert_id)
                    .group_by(Delivery.status)
                ).all()
            )
            rows = {str(getattr(k, "value", k)): v for k, v in rows.items()}
            counters = {
                k: getattr(alert, k)
                for k in ("sent", "failed", "pruned", "cancelled", "suppressed")
            }
            pending = rows.get("pending", 0)
            books.append(
                {
                    "id": alert_id,
                    "status": str(getattr(alert.status, "value", alert.status)),
                    "audience": alert.audience,
                    "pending": pending,
                    **counters,
                    "adds_up": alert.audience == sum(counters.values()) + pending,
                    "rows_match": all(rows.get(k, 0) == v for k, v in counters.items()),
                }
            )
    return books


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=10_000, help="imported before the start")
    parser.add_argument("--alert-every", type=float, default=20.0, help="seconds between alerts")
    parser.add_argument("--subscriptions-per-second", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=300.0, help="max seconds to settle")
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    args = parser.parse_args()
    duration = args.minutes * 60

    schema = f"soak_{secrets.token_hex(4)}"
    prefix = f"{schema}:"
    base = normalise_database_url(args.database)
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    db_url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    broker = args.redis.rsplit("/", 1)[0] + "/12"
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    emulator_proc, emulator_url = start_emulator_process(capacity=EMULATOR_INBOX)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_DATABASE_URL=db_url,
        NOTIFIER_BROKER_URL=broker,
        NOTIFIER_REDIS_URL=args.redis,
        NOTIFIER_REDIS_KEY_PREFIX=prefix,
        NOTIFIER_FCM_ENDPOINT=emulator_url,
        NOTIFIER_DATA_DIR=str(tmp / "var"),
        NOTIFIER_WEBHOOK_SECRETS=SECRET,
        NOTIFIER_HOST="127.0.0.1",
        NOTIFIER_PORT=str(port),
        NOTIFIER_LOG_LEVEL="WARNING",
        # A killed worker's batches come back within a minute, not the production three.
        NOTIFIER_LEASE_SECONDS="30",
        NOTIFIER_REQUEUE_AFTER_SECONDS="15",
        NOTIFIER_RATE_LIMITS="subscriptions=100000/minute;subscription_token=1000/minute",
    )
    stop = threading.Event()
    load = Load()
    t0 = time.monotonic()  # the memory samples' clock, from before any process starts
    procs = Processes(env, tmp, lambda: time.monotonic() - t0)
    procs.watch("emulator", emulator_proc)
    try:
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        # Syncs the topic catalogue into the new schema, as every process does at start.
        Runtime.start(load_settings({k: v for k, v in env.items() if k[:9] == "NOTIFIER_"})).close()
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            key, _ = create_key(session, "editor", "soak")
        rng = random.Random(0)
        lines = [
            json.dumps(
                {
                    "token": f"soak-base-{i:07d}:APA91b{'x' * 60}",
                    "platform": "android",
                    "topics": rng.sample(TOPICS, rng.randint(1, 3)),
                }
            ).encode()
            for i in range(args.devices)
        ]
        report = import_devices(engine, lines)
        log(f"imported {report.imported:,} devices; logs and data in {tmp}")

        procs.start("api", "api", "--workers", "2", "--threads", "4")
        for i in range(2):
            procs.start(f"worker{i}", "worker", "--concurrency", "1", "-n", f"soak{i}@%h")
        procs.start("beat", "beat")
        wait_for(lambda: api_answers(api), 60, "the API")
        log(f"API on {api}, 2 workers x 1, beat, emulator {emulator_url}; {args.minutes:g} min")

        threads = [
            threading.Thread(
                target=readers, args=(api, load, stop, args.subscriptions_per_second), daemon=True
            ),
            threading.Thread(
                target=newsroom, args=(api, key, load, stop, args.alert_every), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        kills = {duration / 3: "worker0", 2 * duration / 3: "worker1"}
        restarts: dict[float, str] = {}
        fault_name, last_progress = "none", 0.0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < duration:
            second = int(elapsed) % 60
            name, faults = next((n, f) for s, f, n in reversed(FAULT_CYCLE) if second >= s)
            if name != fault_name:
                emulator_faults(emulator_url, faults)
                fault_name = name
            for at, role in list(kills.items()):
                if elapsed >= at:
                    procs.kill(role)
                    log(f"  SIGKILL {role} (restarting in 5 s)")
                    restarts[elapsed + 5] = role
                    del kills[at]
            for at, role in list(restarts.items()):
                if elapsed >= at:
                    index = role.removeprefix("worker")
                    procs.start(role, "worker", "--concurrency", "1", "-n", f"soak{index}b@%h")
                    del restarts[at]
            gone = procs.exited()
            if gone:
                raise SystemExit(f"{gone} exited on their own; see {tmp}")
            procs.sample()
            if elapsed - last_progress >= 30:
                last_progress = elapsed
                with sessions() as session:
                    done = session.scalar(
                        select(func.count()).where(Alert.status.in_(list(FINISHED)))
                    )
                    total = session.scalar(select(func.count()).select_from(Alert))
                with load.lock:
                    calls = sum(load.statuses.values())
                    errors = sum(n for k, n in load.statuses.items() if not k[-3:].startswith("2"))
                rss = "  ".join(
                    f"{label.split(' (')[0]} {series.samples[-1][1] / 1024:.0f}"
                    for label, series in procs.memory.items()
                    if series.samples and label in {**procs.running, **procs.watched}
                )
                log(
                    f"{elapsed / 60:4.1f} min  alerts {done}/{total} finished  "
                    f"http {calls:,} ({errors} not 2xx)  fault {fault_name:8}  RSS MiB {rss}"
                )
            time.sleep(5 - (time.monotonic() - started) % 5)

        stop.set()
        emulator_faults(emulator_url, {})
        for thread in threads:
            thread.join(timeout=60)
        log(f"load stopped after {duration / 60:g} min; faults lifted; waiting to settle")
        with sessions() as session:
            alert_ids = list(session.scalars(select(Alert.id).order_by(Alert.created_at)))
        settle_started = time.monotonic()

        def settled() -> bool:
            procs.sample()
            books = alert_books(sessions, alert_ids)
            return all(b["status"] in FINISHED and b["pending"] == 0 for b in books)

        wait_for(settled, args.settle, "every alert to settle")
        log(f"settled in {time.monotonic() - settle_started:.0f} s")
        books = alert_books(sessions, alert_ids)
        procs.sample(force=True)

        print()
        print(f"alerts                {len(books)} ({Counter(b['status'] for b in books)})")
        for k in ("audience", "sent", "failed", "pruned", "cancelled", "suppressed", "pending"):
            print(f"  {k:19} {sum(int(str(b[k])) for b in books):>10,}")
        good = [b for b in books if b["adds_up"] and b["rows_match"] and b["pending"] == 0]
        print(f"counts add up         {len(good)}/{len(books)} alerts")
        for b in books:
            if b not in good:
                print(f"  DOES NOT ADD UP: {b}")
        with sessions() as session:
            reasons = session.execute(
                select(Delivery.error_code, func.count())
                .where(Delivery.error_code.is_not(None))
                .group_by(Delivery.error_code)
            ).all()
        print("reasons               " + ", ".join(f"{c} {n:,}" for c, n in sorted(reasons)))
        print(
            "http                  "
            + ", ".join(f"{k} {n:,}" for k, n in sorted(load.statuses.items()))
        )
        print()
        print(f"memory (RSS, MiB; judged from {WARM_UP:.0f} s on; slope of a least-squares line)")
        print(f"  {'process':22} {'first':>7} {'last':>7} {'peak':>7} {'MiB/min':>8} {'span':>6}")
        for label, series in procs.memory.items():
            points = series.judged()
            if not points:
                continue
            values = [m / 1024 for _, m in points]
            span = (points[-1][0] - points[0][0]) / 60
            print(
                f"  {label:22} {values[0]:7.1f} {values[-1]:7.1f} {max(values):7.1f} "
                f"{series.slope_mib_per_min():+8.2f} {span:5.1f}m"
            )
        engine.dispose()
        return 0 if len(good) == len(books) and books else 1
    finally:
        stop.set()
        procs.stop_all()
        stop_emulator_process(emulator_proc)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        for url in (broker, args.redis):
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


if __name__ == "__main__":
    sys.exit(main())
