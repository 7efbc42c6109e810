"""Quota benchmark: a fan-out against an emulator that enforces FCM's quota, as FCM does.

Real parts only, as in bench/fanout.py: a throwaway PostgreSQL schema, Redis as broker and as
the shared quota bucket, `notifier worker` processes, the FCM emulator over HTTP. The emulator
refuses sends over the quota in any rolling 60 s per project with 429 QUOTA_EXCEEDED, so every
429 notifier causes is counted, not guessed.

Two phases on the same audience, each with fresh workers:
  baseline  the emulator enforces no quota and the workers run with FCM's default quota
            (600,000/min): what this machine reaches on its own;
  quota     the emulator and the workers both at --quota.
In each, --alerts alerts (each to its share of the audience) are posted at once and one more
worker joins --join-after seconds in. Printed for each: devices/s from the first to the last
arrival and from the events to the last arrival, as a fraction of the quota, the busiest rolling
60 s at the emulator, and the 429s.

    .venv/bin/python bench/quota.py                          # 120,000/min, 60,000 devices
    .venv/bin/python bench/quota.py --quota 60000 --devices 90000    # longer than a minute
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from sqlalchemy import text

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.models import Alert
from notifier.core.settings import load_settings, normalise_database_url
from notifier.emulator.launcher import start_emulator_process, stop_emulator_process
from notifier.http.app import create_app
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import import_devices
from workers.celery_app import make_celery
from workers.publish import CeleryPublisher

SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC0wMTIzNDU2Nzg5"
TOPICS = ["israel", "world", "breaking", "politics"]
FCM_DEFAULT_QUOTA = 600_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    # base_url is the emulator this benchmark started, never user input.
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def device_lines(n: int, alerts: int) -> list[bytes]:
    """``n`` devices, each following the topic of one of the ``alerts`` alerts, in turn."""
    return [
        json.dumps(
            {
                "token": f"quota-{i:07d}:APA91b{'x' * 120}",
                "platform": "android",
                "topics": [TOPICS[i % alerts]],
            }
        ).encode()
        for i in range(n)
    ]


def arrival_times(base_url: str) -> list[float]:
    """When the emulator accepted each message it still holds, oldest first."""
    times: list[float] = []
    since = 0
    while True:
        page = call(base_url, "GET", f"/emulator/messages?since={since}&limit=20000")["messages"]
        if not page:
            return sorted(times)
        times.extend(m["received_at"] for m in page)
        since = max(int(m["seq"]) for m in page)


def busiest_minute(arrivals: list[float]) -> int:
    """The most arrivals in any 60 s window [t, t + 60), wherever it starts."""
    most = start = 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= 60.0:
            start += 1
        most = max(most, end - start + 1)
    return most


@dataclass
class PhaseResult:
    name: str
    devices: int
    received: int
    first_to_last_s: float
    events_to_last_s: float
    busiest_minute: int
    refused: int
    statuses: list[str]


class Bench:
    """The parts both phases share: database, Redis, emulator, the API as a test client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.schema = f"bench_{secrets.token_hex(4)}"
        base = normalise_database_url(args.database)
        self.admin = make_engine(base, pool_size=1, max_overflow=0)
        with self.admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        options = quote(f"-csearch_path={self.schema}")
        self.db_url = f"{base}{'&' if '?' in base else '?'}options={options}"
        self.broker = args.redis.rsplit("/", 1)[0] + "/13"
        self.emulator_proc, self.emulator_url = start_emulator_process(
            capacity=args.devices + 10_000
        )
        self.tmp = Path(tempfile.mkdtemp(prefix="quota-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env.update(
            NOTIFIER_DATABASE_URL=self.db_url,
            NOTIFIER_BROKER_URL=self.broker,
            NOTIFIER_REDIS_URL=args.redis,
            NOTIFIER_FCM_ENDPOINT=self.emulator_url,
            NOTIFIER_FCM_PROJECT_ID="notifier-bench",
            NOTIFIER_DATA_DIR=str(self.tmp),
            NOTIFIER_WEBHOOK_SECRETS=SECRET,
            NOTIFIER_LOG_LEVEL="WARNING",
            # Keys of its own in Redis (queues, the quota bucket): nothing else takes its tasks.
            NOTIFIER_REDIS_KEY_PREFIX=f"{self.schema}:",
        )
        self.env = env
        self.workers: list[subprocess.Popen[bytes]] = []
        self.engine = make_engine(self.db_url)
        migrate.upgrade(self.engine)
        settings = load_settings({k: v for k, v in env.items() if k.startswith("NOTIFIER_")})
        self.runtime = Runtime.start(settings)
        self.runtime.publisher = CeleryPublisher(make_celery(settings))
        self.client = create_app(runtime=self.runtime).test_client()

    def start_worker(self, quota_per_minute: int) -> None:
        env = dict(self.env, NOTIFIER_FCM_QUOTA_PER_MINUTE=str(quota_per_minute))
        index = len(self.workers)
        self.workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "notifier",
                    "worker",
                    "--concurrency",
                    str(self.args.concurrency),
                    "--loglevel",
                    "WARNING",
                    "-n",
                    f"quota{index}@%h",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(self.tmp / f"worker{index}.log", "wb"),  # noqa: SIM115
                start_new_session=True,
            )
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.workers.clear()

    def post_event(self, article: str, topic: str) -> str:
        body = json.dumps(
            {
                "type": "article.published",
                "data": {
                    "id": article,
                    "url": f"https://news.example/{article}",
                    "headline": f"Benchmark: {article}",
                    "topics": [topic],
                    "breaking": True,
                },
            }
        ).encode()
        ts = int(time.time())
        webhook_id = f"msg_{article}"
        response = self.client.post(
            "/v1/events",
            data=body,
            content_type="application/json",
            headers={
                "webhook-id": webhook_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": sign_webhook(SECRET, webhook_id, ts, body),
            },
        )
        assert response.status_code == 202, response.json
        return str((response.json or {})["alert"]["id"])

    def run_phase(self, name: str, emulator_quota: int | None, worker_quota: int) -> PhaseResult:
        args = self.args
        call(self.emulator_url, "POST", "/emulator/quota", {"per_minute": emulator_quota})
        call(self.emulator_url, "DELETE", "/emulator/messages")
        refused_before = self._refused()
        log(
            f"{name}: emulator quota {emulator_quota or 'off'}, workers at {worker_quota:,}/min; "
            f"{args.workers} worker(s) x {args.concurrency}"
        )
        for _ in range(args.workers):
            self.start_worker(worker_quota)
        time.sleep(5)  # the workers connect and warm up before the clock starts
        posted = time.time()
        alerts = [
            self.post_event(f"{name}-{i}", TOPICS[i % args.alerts]) for i in range(args.alerts)
        ]
        log(f"  {len(alerts)} alert(s) posted at once")
        joined = args.join_after <= 0
        last_print = 0.0
        deadline = posted + 1800
        statuses: list[str] = []
        while time.time() < deadline:
            if not joined and time.time() - posted >= args.join_after:
                self.start_worker(worker_quota)
                joined = True
                log("  one more worker joins the fan-out")
            if any(w.poll() is not None for w in self.workers):
                raise SystemExit(f"a worker exited; see {self.tmp}/worker*.log")
            with self.runtime.sessions() as session:
                rows = [session.get(Alert, alert_id) for alert_id in alerts]
                done = sum(r.sent + r.failed + r.pruned for r in rows if r is not None)
                statuses = [str(r.status) if r is not None else "?" for r in rows]
            if time.time() - last_print > 3:
                rate = done / max(time.time() - posted, 1e-9)
                log(f"  {done:>9,}/{args.devices:,} devices  {rate:,.0f}/s  {statuses}")
                last_print = time.time()
            if all(s not in ("scheduled", "sending") for s in statuses):
                break
            time.sleep(0.25)
        arrivals = arrival_times(self.emulator_url)
        self.stop_workers()
        return PhaseResult(
            name=name,
            devices=args.devices,
            received=len(arrivals),
            first_to_last_s=arrivals[-1] - arrivals[0] if arrivals else 0.0,
            events_to_last_s=arrivals[-1] - posted if arrivals else 0.0,
            busiest_minute=busiest_minute(arrivals),
            refused=self._refused() - refused_before,
            statuses=statuses,
        )

    def _refused(self) -> int:
        outcomes = call(self.emulator_url, "GET", "/emulator/stats")["outcomes"]
        return int(outcomes.get("QUOTA_EXCEEDED", 0))

    def close(self) -> None:
        self.stop_workers()
        self.runtime.close()
        self.engine.dispose()
        stop_emulator_process(self.emulator_proc)
        with self.admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
        self.admin.dispose()
        for url in (self.broker, self.args.redis):
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=f"{self.schema}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


def report(results: list[PhaseResult], per_minute: int) -> None:
    per_second = per_minute / 60
    print()
    print(f"quota {per_minute:,}/min ({per_second:,.0f}/s) per project, enforced by the emulator")
    header = (
        f"{'phase':<9} {'received':>9} {'first->last':>12} {'devices/s':>10} {'of quota':>9} "
        f"{'events->last':>13} {'of quota':>9} {'busiest 60 s':>13} {'429s':>5}  status"
    )
    print(header)
    for r in results:
        rate = r.received / r.first_to_last_s if r.first_to_last_s else 0.0
        overall = r.received / r.events_to_last_s if r.events_to_last_s else 0.0
        print(
            f"{r.name:<9} {r.received:>9,} {r.first_to_last_s:>10.2f} s {rate:>10,.0f} "
            f"{rate / per_second:>8.1%} {r.events_to_last_s:>11.2f} s {overall / per_second:>8.1%} "
            f"{r.busiest_minute / per_minute:>12.1%} {r.refused:>5}  {','.join(r.statuses)}"
        )
    print(
        "(of quota: devices/s over the quota's per-second rate; busiest 60 s: the most sends the "
        "emulator counted in any rolling minute, over the quota)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quota", type=int, default=120_000, help="per minute, per project")
    parser.add_argument("--devices", type=int, default=60_000)
    parser.add_argument("--alerts", type=int, choices=range(1, len(TOPICS) + 1), default=2)
    parser.add_argument("--workers", type=int, default=2, help="worker processes at the start")
    parser.add_argument("--concurrency", type=int, default=1, help="pool size of each worker")
    parser.add_argument(
        "--join-after", type=float, default=10.0, help="seconds before one more worker joins"
    )
    parser.add_argument("--skip-baseline", action="store_true")
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

    bench = Bench(args)
    try:
        log(f"subscribing {args.devices:,} devices, split between {args.alerts} alert(s)")
        imported = import_devices(bench.engine, device_lines(args.devices, args.alerts))
        log(f"  {imported.imported:,} devices")
        log(f"load average at the start: {os.getloadavg()[0]:.2f}")
        results = []
        if not args.skip_baseline:
            results.append(bench.run_phase("baseline", None, FCM_DEFAULT_QUOTA))
        results.append(bench.run_phase("quota", args.quota, args.quota))
        report(results, args.quota)
        quota_run = results[-1]
        return 0 if quota_run.refused == 0 and quota_run.received == args.devices else 1
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
