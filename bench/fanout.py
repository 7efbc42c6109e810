"""End-to-end fan-out benchmark: one signed article event to N subscribed devices.

Real parts only: PostgreSQL (a throwaway schema), Redis as broker and quota bucket, real Celery
worker processes (`notifier worker`), the FCM emulator over HTTP. Prints devices/s, time to the
first and the last device, the workers' peak memory, and, as the baseline from the same run, the
rate of a bare aiohttp client against the same emulator.

It also prints, from the same run, the CPU seconds per delivered device (read from /proc, so a
busy machine does not move them) of the worker process trees, of PostgreSQL (this run's backends,
found by their application_name, and the server's background processes), of Redis and of the
emulator, against the bare client's own CPU per message.

With ``--preferences`` the audience has readers' preferences (issue 11): five languages (en, fr,
he, ar, fa; the alert carries translations), a third in quiet hours now (half silent, half skip),
a fifth capped (some already at their cap); it checks that the counts add up at the end.

    .venv/bin/python bench/fanout.py                      # 100,000 devices, 2 workers x 1
    .venv/bin/python bench/fanout.py --devices 20000 --preferences
    .venv/bin/python bench/fanout.py --devices 20000 --workers 1 --concurrency 2
    .venv/bin/python bench/fanout.py --broker amqp://guest:guest@127.0.0.1:5672/bench  # RabbitMQ
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import aiohttp
import redis
from _common import deliveries_updates, log, rss_kib
from proc_cpu import CpuSampler, pids_named, process_tree, threads
from sqlalchemy import Engine, text

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core import migrate
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.settings import load_settings, normalise_database_url
from notifier.emulator import write_service_account
from notifier.emulator.launcher import start_emulator_process, stop_emulator_process
from notifier.fcm.sender import FcmSender
from notifier.fcm.types import Platform, PushAlert, Target
from notifier.http.app import create_app
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import import_devices
from workers.celery_app import make_celery
from workers.publish import CeleryPublisher

PROJECT = "notifier-bench"
SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC0wMTIzNDU2Nzg5"
LANGUAGES = ("en", "fr", "he", "ar", "fa")
DAILY_CAP = 2


def bare_requests(base_url: str, data_dir: Path, count: int) -> BareRequests:
    """The requests a worker's sender makes for ``count`` devices of the benchmark's alert.

    Built by the workers' own :class:`FcmSender` (SDK encoder, token spliced into the encoded
    message, the same five headers and bearer token), so the bare client posts the same bytes as
    the workers do: the baseline differs from them only by everything that is not HTTP.
    """
    account = write_service_account(
        data_dir / "bare-client-account.json", project_id=PROJECT, token_uri=f"{base_url}/token"
    )
    sender = FcmSender(project_id=PROJECT, endpoint=base_url, credentials_path=account)
    try:
        alert = PushAlert(
            alert_id="00000000-0000-4000-8000-00000000bare",
            headline="Benchmark: breaking",
            url="https://news.example/bench",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            ttl_seconds=3600,
            topics=("israel", "breaking"),
            analytics_label="alert-00000000",
        )
        targets = [Target(i, device_token(i), Platform.ANDROID) for i in range(count)]
        bodies = sender._bodies(alert, targets, alert.ttl_seconds)
        headers = {**sender._headers, "Authorization": sender._authorization()}
        return BareRequests(sender._url, headers, bodies, sender._max_in_flight)
    finally:
        sender.close()


class BareRequests(NamedTuple):
    url: str
    headers: dict[str, str]
    bodies: list[bytes]
    in_flight: int


async def bare_client_rate(requests: BareRequests) -> float:
    """Messages/s of a plain aiohttp client posting the workers' requests to the same emulator.

    Its session is set up as the sender's (per-request timeout, no User-Agent, no cookie jar)
    and keeps as many requests in flight as the sender does against this endpoint; it reads each
    answer and nothing else.
    """
    pending = iter(requests.bodies)
    connector = aiohttp.TCPConnector(limit=requests.in_flight)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
        skip_auto_headers=("User-Agent",),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:

        async def worker() -> None:
            for body in pending:
                async with session.post(requests.url, data=body, headers=requests.headers) as r:
                    await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(requests.in_flight)))
        return len(requests.bodies) / (time.perf_counter() - started)


def device_token(i: int) -> str:
    return f"bench-{i:07d}:APA91b{'x' * 120}"


def device_lines(n: int, topics: list[str], preferences: bool = False) -> list[bytes]:
    lines = []
    for i in range(n):
        # Half the audience follows both topics: each must still get the alert exactly once.
        follows = topics if i % 2 else topics[:1]
        line: dict[str, object] = {
            "token": device_token(i),
            "platform": "android",
            "topics": follows,
        }
        if preferences:
            line["locale"] = LANGUAGES[i % len(LANGUAGES)]
            line["timezone"] = "Asia/Jerusalem"
        lines.append(json.dumps(line).encode())
    return lines


def set_preferences(engine: Engine, sessions: object, now: datetime) -> dict[str, int]:
    """A third of the devices in quiet hours now (half silent, half skip), a fifth capped at
    DAILY_CAP, half of those already at it (sends of two earlier alerts in ``device_sends``)."""
    import zoneinfo

    local = now.astimezone(zoneinfo.ZoneInfo("Asia/Jerusalem"))
    minute = local.hour * 60 + local.minute
    start, end = (minute - 60) % 1440, (minute + 60) % 1440
    # Two earlier alerts, on a topic nobody here follows, for the capped devices' past sends.
    earlier = []
    for n in range(DAILY_CAP):
        with transaction(sessions) as session:  # type: ignore[arg-type]
            earlier.append(
                create_alert(
                    session,
                    AlertDraft(
                        headline=f"Earlier {n}", url="https://news.example/e", topics=("science",)
                    ),
                    default_hold=0,
                    default_ttl=3600,
                ).id
            )
    with engine.begin() as conn:
        quiet = conn.execute(
            text(
                "UPDATE devices SET quiet_start = :s, quiet_end = :e, "
                "quiet_mode = CASE WHEN id % 2 = 0 THEN 'silent' ELSE 'skip' END "
                "WHERE id % 3 = 0"
            ),
            {"s": start, "e": end},
        ).rowcount
        capped = conn.execute(
            text("UPDATE devices SET max_per_day = :cap WHERE id % 5 = 1"), {"cap": DAILY_CAP}
        ).rowcount
        at_cap = 0
        for alert_id in earlier:
            at_cap = conn.execute(
                text(
                    "INSERT INTO device_sends (device_id, alert_id, sent_at) "
                    "SELECT id, :a, :t FROM devices WHERE id % 10 = 1"
                ),
                {"a": alert_id, "t": now - timedelta(hours=2)},
            ).rowcount
        conn.execute(text("ANALYZE"))
    return {"quiet hours": quiet, "capped": capped, "at their cap": at_cap}


class PostgresPids:
    """Which PostgreSQL processes work for this run: its workers' backends (by application_name)
    and the server's background processes (WAL writer, checkpointer, autovacuum...)."""

    def __init__(self, admin: Engine, application_name: str) -> None:
        self.admin = admin
        self.application_name = application_name
        self.ours: list[int] = []
        self.background: list[int] = []
        self._lock = threading.Lock()

    def refresh(self) -> list[int]:
        with self._lock, self.admin.connect() as conn:
            rows = conn.execute(
                text("SELECT pid, application_name, backend_type FROM pg_stat_activity")
            ).all()
        clients = {r.pid for r in rows if r.backend_type == "client backend"}
        self.ours = [r.pid for r in rows if r.application_name == self.application_name]
        # Everything named postgres that is no client backend: the postmaster and its helpers.
        self.background = [p for p in pids_named("postgres") if p not in clients]
        return self.ours


def arrival_window(base_url: str) -> tuple[float, float, int]:
    """First and last arrival times and the count, paging through the emulator's messages."""
    first, last, count, since = float("inf"), 0.0, 0, 0
    while True:
        url = f"{base_url}/emulator/messages?since={since}&limit=20000"
        with urllib.request.urlopen(url, timeout=30) as response:
            page = json.load(response)["messages"]
        if not page:
            return first, last, count
        for message in page:
            first = min(first, message["received_at"])
            last = max(last, message["received_at"])
            since = max(since, int(message["seq"]))
        count += len(page)


def print_counts(engine: Engine, alert_id: str, devices: int, received: int) -> int:
    """The alert's counts, checked against its deliveries; returns the devices sent."""
    with engine.connect() as conn:
        alert = conn.execute(
            text(
                "SELECT audience, sent, failed, pruned, cancelled, suppressed, silent, "
                "suppressed_quiet_hours, suppressed_daily_cap FROM alerts WHERE id = :a"
            ),
            {"a": alert_id},
        ).one()
        by_status: dict[str, int] = dict(
            conn.execute(
                text("SELECT status, count(*) FROM deliveries WHERE alert_id = :a GROUP BY status"),
                {"a": alert_id},
            ).all()
        )
    pending = by_status.get("pending", 0)
    settled = alert.sent + alert.failed + alert.pruned + alert.cancelled + alert.suppressed
    adds_up = alert.audience == settled + pending == devices
    print(
        f"counts                  audience {alert.audience:,} = sent {alert.sent:,} + failed "
        f"{alert.failed:,} + pruned {alert.pruned:,} + cancelled {alert.cancelled:,} + "
        f"suppressed {alert.suppressed:,} + pending {pending:,}: "
        f"{'adds up' if adds_up else 'DOES NOT ADD UP'}"
    )
    print(
        f"                        silent {alert.silent:,}; suppressed for quiet hours "
        f"{alert.suppressed_quiet_hours:,}, daily cap {alert.suppressed_daily_cap:,}; "
        f"deliveries by status {dict(sorted(by_status.items()))}"
    )
    if not adds_up or by_status.get("sent", 0) != alert.sent or received != alert.sent:
        print("                        MISMATCH: counters, deliveries and emulator disagree")
    return int(alert.sent)


def pool_pids(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    """The pool processes of the workers (their descendants; a main process is no pool)."""
    return [p for w in workers for p in process_tree(w.pid) if p != w.pid]


def print_cpu(
    cpu: dict[str, float], delivered: int, bare_cpu_us: float, bare_runs: tuple[float, float]
) -> None:
    """CPU per delivered device, from /proc, beside the bare client's CPU per message."""
    per = {group: seconds / max(delivered, 1) * 1e6 for group, seconds in cpu.items()}
    pg = per["postgres"] + per["postgres background"]
    print(f"CPU per delivered device, from /proc ({delivered:,} devices):")
    print(
        f"  workers               {per['workers']:7,.0f} µs  ({cpu['workers']:.1f} s; Celery's "
        f"main processes {per['worker main processes']:,.0f}, the pool processes the rest)"
    )
    print(
        f"                                  (pool task threads {per['pool task threads']:,.0f}, "
        f"the sender's event loop thread {per['pool other threads']:,.0f})"
    )
    print(
        f"  PostgreSQL            {pg:7,.0f} µs  (this run's backends {per['postgres']:,.0f}, "
        f"background processes {per['postgres background']:,.0f})"
    )
    print(f"  Redis                 {per['redis']:7,.0f} µs")
    print(f"  emulator              {per['emulator']:7,.0f} µs")
    print(
        f"  bare client           {bare_cpu_us:7,.0f} µs per message (same run: the mean of "
        f"{bare_runs[0]:,.0f} before the fan-out and {bare_runs[1]:,.0f} after it)"
    )
    print(f"  workers / bare client {per['workers'] / bare_cpu_us:7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="pool size of each worker")
    parser.add_argument("--pool", choices=["prefork", "threads"], default="prefork")
    parser.add_argument("--bare", type=int, default=20_000, help="requests for the bare client")
    parser.add_argument(
        "--fillfactor",
        type=int,
        default=None,
        help="set the deliveries table's fillfactor (an experiment: room in each page lets the"
        " send's UPDATE stay on the page, a HOT update that writes no index entries)",
    )
    parser.add_argument(
        "--preferences",
        action="store_true",
        help="readers' preferences: languages, quiet hours, daily caps (issue 11)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    parser.add_argument(
        "--broker",
        default=None,
        help="Celery's broker (e.g. an amqp:// URL with an empty vhost of its own); Redis db 13 if"
        " omitted",
    )
    args = parser.parse_args()

    schema = f"bench_{secrets.token_hex(4)}"
    base = normalise_database_url(args.database)
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    db_url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    # The workers' backends are told apart from everyone else's (the benchmark's own polling, other
    # users of the server) by their application_name.
    worker_app_name = f"{schema}_workers"
    worker_db_url = f"{db_url}&application_name={worker_app_name}"
    broker = args.broker or args.redis.rsplit("/", 1)[0] + "/13"
    emulator_proc, emulator_url = start_emulator_process(capacity=args.devices + 10_000)
    tmp = Path(tempfile.mkdtemp(prefix="fanout-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_DATABASE_URL=worker_db_url,
        NOTIFIER_BROKER_URL=broker,
        NOTIFIER_REDIS_URL=args.redis,
        NOTIFIER_FCM_ENDPOINT=emulator_url,
        NOTIFIER_FCM_PROJECT_ID=PROJECT,
        NOTIFIER_DATA_DIR=str(tmp),
        NOTIFIER_WEBHOOK_SECRETS=SECRET,
        # Keys of its own in Redis: workers left over from another run never take its tasks.
        NOTIFIER_REDIS_KEY_PREFIX=f"{schema}:",
        NOTIFIER_LOG_LEVEL="WARNING",
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # No FLUSHDB: every key of this run (the broker's queues too, by Celery's
        # global_keyprefix) starts with its own prefix, and other runs sharing this Redis (other
        # engineers' benchmarks and test suites) must keep their queued tasks.
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        if args.fillfactor:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE deliveries SET (fillfactor = {args.fillfactor:d})"))
        settings = load_settings(
            {
                **{k: v for k, v in env.items() if k.startswith("NOTIFIER_")},
                "NOTIFIER_DATABASE_URL": db_url,
            }
        )
        runtime = Runtime.start(settings)
        runtime.publisher = CeleryPublisher(make_celery(settings))

        log(f"subscribing {args.devices:,} devices (half of them to two topics)")
        report = import_devices(
            engine, device_lines(args.devices, ["israel", "breaking"], args.preferences)
        )
        log(f"  {report.imported:,} devices, {report.subscriptions_added:,} subscriptions")
        if args.preferences:
            shares = set_preferences(engine, make_session_factory(engine), datetime.now(UTC))
            log("  preferences: " + ", ".join(f"{v:,} {k}" for k, v in shares.items()))

        requests = bare_requests(emulator_url, tmp, args.bare)
        log(
            f"bare aiohttp client: {args.bare:,} requests against the emulator, "
            f"{requests.in_flight} in flight, the workers' bodies and headers"
        )
        cpu_before = time.process_time()
        bare = asyncio.run(bare_client_rate(requests))
        bare_cpu_us = (time.process_time() - cpu_before) / args.bare * 1e6
        log(f"  {bare:,.0f} messages/s, {bare_cpu_us:,.0f} µs of client CPU per message")
        urllib.request.urlopen(
            urllib.request.Request(f"{emulator_url}/emulator/messages", method="DELETE")
        )

        log(f"starting {args.workers} worker process(es) x {args.concurrency} ({args.pool})")
        for i in range(args.workers):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "notifier",
                        "worker",
                        "--concurrency",
                        str(args.concurrency),
                        "--pool",
                        args.pool,
                        "--loglevel",
                        "WARNING",
                        "-n",
                        f"bench{i}@%h",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp / f"worker{i}.log", "wb"),  # noqa: SIM115
                    start_new_session=True,
                )
            )
        time.sleep(4)  # let the workers connect and warm up before the clock starts
        baseline_rss = sum(rss_kib(w.pid) for w in workers)

        client = create_app(runtime=runtime).test_client()
        data: dict[str, object] = {
            "id": "bench-article",
            "url": "https://news.example/bench",
            "headline": "Benchmark: breaking",
            "topics": ["israel", "breaking"],
            "breaking": True,
        }
        if args.preferences:
            data["locale"] = "en"
            data["translations"] = {
                tag: {"headline": f"Benchmark ({tag})", "summary": f"Résumé {tag}"}
                for tag in LANGUAGES[1:]
            }
        body = json.dumps({"type": "article.published", "data": data}).encode()
        postgres = PostgresPids(admin, worker_app_name)
        sampler = CpuSampler(
            {
                "workers": lambda: [p for w in workers for p in process_tree(w.pid)],
                # Celery's main processes: they take the messages from the broker and hand them
                # to the pool processes, which run the tasks.
                "worker main processes": lambda: [w.pid for w in workers],
                # The pool processes split by thread: the main thread runs the tasks (Celery, the
                # lease, the recording, planning, the bodies and outcomes); the others are the
                # sender's event loop (the HTTP requests: the bare client's work).
                "pool task threads": lambda: [(p, p) for p in pool_pids(workers)],
                "pool other threads": lambda: [
                    t for p in pool_pids(workers) for t in threads(p) if t[1] != p
                ],
                "postgres": postgres.refresh,
                "postgres background": lambda: postgres.background,
                "redis": lambda: pids_named("redis-server"),
                "emulator": lambda: process_tree(emulator_proc.pid),
            }
        )
        sampler.open()
        ts = int(time.time())
        started = time.time()
        response = client.post(
            "/v1/events",
            data=body,
            content_type="application/json",
            headers={
                "webhook-id": "msg_bench",
                "webhook-timestamp": str(ts),
                "webhook-signature": sign_webhook(SECRET, "msg_bench", ts, body),
            },
        )
        assert response.status_code == 202, response.json
        alert_id = response.json["alert"]["id"]
        log(
            f"event accepted (202) in {(time.time() - started) * 1000:.0f} ms; alert {alert_id[:8]}"
        )

        peak_rss = baseline_rss
        deadline = time.time() + 1800
        last_print = 0.0
        while time.time() < deadline:
            dead = [w for w in workers if w.poll() is not None]
            if dead:
                raise SystemExit(f"a worker exited ({dead[0].returncode}); see {tmp}/worker*.log")
            peak_rss = max(peak_rss, sum(rss_kib(w.pid) for w in workers))
            with runtime.sessions() as session:
                from notifier.core.models import Alert

                alert = session.get(Alert, alert_id)
                assert alert is not None
                done = alert.sent + alert.failed + alert.pruned + alert.suppressed + alert.cancelled
                status = alert.status
            if time.time() - last_print > 2:
                rate = done / max(time.time() - started, 1e-9)
                log(f"  {status:8} {done:>9,}/{args.devices:,} devices  {rate:,.0f}/s")
                last_print = time.time()
            if status not in ("scheduled", "sending"):
                break
            time.sleep(0.2)
        cpu = sampler.close()
        first, last, received = arrival_window(emulator_url)
        # The bare client again, now that the fan-out is over: the load others put on this box
        # changes minute by minute, and the mean of a run before and one after the fan-out is
        # a fairer baseline than either alone.
        cpu_before = time.process_time()
        bare_after = asyncio.run(bare_client_rate(requests))
        bare_after_cpu_us = (time.process_time() - cpu_before) / args.bare * 1e6
        log(f"  bare client again: {bare_after:,.0f} messages/s, {bare_after_cpu_us:,.0f} µs")
        bare_cpu_us, bare_runs = (
            (bare_cpu_us + bare_after_cpu_us) / 2,
            (bare_cpu_us, bare_after_cpu_us),
        )
        bare = (bare + bare_after) / 2
        elapsed = last - started
        rate = received / elapsed if elapsed > 0 else 0.0
        print()
        print(f"devices                 {args.devices:,} (received {received:,}, status {status})")
        print(f"time to first device    {first - started:.3f} s")
        print(f"time to last device     {elapsed:.2f} s")
        print(f"devices/s               {rate:,.0f}")
        print(f"bare client messages/s  {bare:,.0f}  (same emulator, same run, mean of two)")
        print(f"ratio to bare client    {rate / bare:.2f}")
        print(
            f"worker peak RSS         {peak_rss / 1024:.0f} MiB total for {args.workers} worker(s) "
            f"(idle {baseline_rss / 1024:.0f} MiB)"
        )
        delivered = print_counts(engine, alert_id, args.devices, received)
        print_cpu(cpu, delivered, bare_cpu_us, bare_runs)
        with engine.connect() as conn:
            updates, hot = deliveries_updates(conn)
        print(f"deliveries updates      {updates:,}, of which HOT (no index entries) {hot:,}")
        with runtime.sessions() as session:  # what GET /v1/alerts/{id} reports as `latency`
            from notifier.alerts.latency import alert_latency

            lat = alert_latency(session, session.get(Alert, alert_id))  # type: ignore[arg-type]
        print(f"delivery latency        p50 {lat.p50_s} s · p90 {lat.p90_s} s · p99 {lat.p99_s} s")
        print(f"within 120 s of due     {(lat.within_120s or 0):.2%} of {lat.accepted:,} accepted")
        runtime.close()
        engine.dispose()
        return 0 if received == delivered and (args.preferences or delivered == args.devices) else 1
    finally:
        for worker in workers:
            try:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(worker.pid, signal.SIGKILL)
        stop_emulator_process(emulator_proc)
        for url in {broker, args.redis} if broker.startswith("redis") else {args.redis}:
            client = redis.Redis.from_url(url)
            for key in client.scan_iter(match=f"{schema}:*", count=1000):
                client.delete(key)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
