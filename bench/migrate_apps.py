"""Migration 0004 (several apps) on a large devices table, while readers keep subscribing.

"Without downtime" measured: N devices (default 1,000,000) at revision 0003 on PostgreSQL, a
writer thread inserting one device per statement (as ``POST /v1/subscriptions`` does, each in its
own transaction) the whole time, and the migration run under it. It prints how long the
migration took and the writer's latencies before and during it; as the baseline, in the same run,
the naive migration (the same columns, then a plain ``CREATE UNIQUE INDEX`` in the migration's
transaction) under the same writer, whose stall is the index build.

    .venv/bin/python bench/migrate_apps.py                   # 1,000,000 devices
    .venv/bin/python bench/migrate_apps.py --devices 200000
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from sqlalchemy import Engine, text

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.settings import normalise_database_url

_INSERT = text(
    "INSERT INTO devices (token, platform, state, created_at, last_seen_at, urgent_overrides) "
    "VALUES (:token, 'android', 'active', now(), now(), true) ON CONFLICT DO NOTHING"
)


class Writer(threading.Thread):
    """Subscribes new devices one statement at a time, noting each statement's latency."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self.stop = threading.Event()
        self._seq = itertools.count()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(_INSERT, {"token": f"live-{secrets.token_hex(8)}-{next(self._seq)}"})
                conn.commit()
                self.samples.append((started, time.perf_counter() - started))
                time.sleep(0.005)

    def between(self, start: float, end: float) -> list[float]:
        return [s for t, s in self.samples if start <= t < end]


def seed(engine: Engine, devices: int) -> None:
    migrate.downgrade(engine, "base")
    migrate.upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (token, platform, state, created_at, last_seen_at, "
                "urgent_overrides) SELECT 'bench-' || g || '-APA91b', 'android', 'active', "
                "now(), now(), true FROM generate_series(1, :n) AS g"
            ),
            {"n": devices},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE devices"))


def naive_0004(engine: Engine) -> None:
    """What a migration without care would do: everything in one transaction, index blocking."""
    with engine.begin() as conn:
        conn.execute(
            text("ALTER TABLE devices ADD COLUMN app VARCHAR(64) NOT NULL DEFAULT 'default'")
        )
        conn.execute(text("CREATE UNIQUE INDEX uq_devices_app_token ON devices (app, token)"))
        conn.execute(text("ALTER TABLE devices DROP CONSTRAINT uq_devices_token"))


def measure(engine: Engine, label: str, migrate_step: Callable[[], None]) -> None:
    writer = Writer(engine)
    writer.start()
    time.sleep(3)  # the writer's steady state before the migration
    before_end = time.perf_counter()
    migrate_step()
    after = time.perf_counter()
    time.sleep(1)
    writer.stop.set()
    writer.join()
    before = writer.between(0, before_end)
    during = writer.between(before_end, after)
    print(f"{label}")
    print(f"  migration                      {after - before_end:8.2f} s")
    print(
        f"  subscribe before: median {statistics.median(before) * 1000:7.2f} ms, "
        f"max {max(before) * 1000:8.1f} ms ({len(before)} writes)"
    )
    if during:
        print(
            f"  subscribe during: median {statistics.median(during) * 1000:7.2f} ms, "
            f"max {max(during) * 1000:8.1f} ms ({len(during)} writes)"
        )
    else:
        print("  subscribe during: no write started while it ran")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    base = normalise_database_url(args.database)
    schema = f"apps_{secrets.token_hex(4)}"
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        engine = make_engine(url)
        print(f"{args.devices:,} devices at 0003, a writer subscribing every ~5 ms throughout")
        seed(engine, args.devices)
        measure(
            engine,
            "0004 as shipped (constant default, index CONCURRENTLY)",
            lambda: migrate.upgrade(engine, "0004"),
        )
        seed(engine, args.devices)
        measure(
            engine,
            "baseline: naive (same columns, blocking CREATE UNIQUE INDEX)",
            lambda: naive_0004(engine),
        )
        engine.dispose()
        return 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
