"""Delivery percentiles: what computing an alert's ``latency`` costs at 100,000 sent deliveries.

Fills a throwaway PostgreSQL schema (and a SQLite file) with one alert of N sent deliveries
(default 100,000, accepted over about a minute, as a fan-out at the quota records them) beside
other alerts' deliveries (so the alert is a slice of a bigger table), then times, median of
several runs each:

- ``alert_latency`` uncached (what a GET costs the first time, and each time a live alert has
  accepted more devices since the last one);
- ``alert_latency`` cached (every later GET of a finished alert);
- the baseline from the same run on the same rows: ``count(*)`` of the alert's sent deliveries
  (the least any exact figure over them can cost).

    .venv/bin/python bench/latency.py
    .venv/bin/python bench/latency.py --deliveries 200000 --repeat 7 --no-sqlite
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import DEFAULT_DATABASE, log, private_schema
from sqlalchemy import Engine, func, insert, select, text

from notifier.alerts import latency
from notifier.alerts.service import AlertDraft, create_alert
from notifier.core import migrate
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import Alert, Delivery
from notifier.core.vocabulary import AlertStatus, DeliveryStatus

DUE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def fill(engine: Engine, deliveries: int, others: int) -> str:
    """One alert with ``deliveries`` sent rows over ~60 s (+ a few failed), and ``others`` rows of
    three other alerts; returns the measured alert's id."""
    sessions = make_session_factory(engine)
    ids = []
    with transaction(sessions) as session:
        for n in range(4):
            alert = create_alert(
                session,
                AlertDraft(headline=f"Bench {n}", url="https://news.example/a", topics=("israel",)),
                default_hold=0,
                default_ttl=3600,
                now=DUE - timedelta(hours=n),
            )
            alert.status, alert.finished_at = AlertStatus.SENT, DUE + timedelta(minutes=2)
            ids.append(alert.id)
    sizes = [deliveries] + [others // 3] * 3
    for alert_id, size in zip(ids, sizes, strict=True):
        for start in range(0, size, 20_000):
            rows: list[dict[str, Any]] = [
                {
                    "alert_id": alert_id,
                    "device_id": i,
                    "batch_id": i // 500,
                    # Batches land in order, a little out of order across workers.
                    "status": DeliveryStatus.FAILED if i % 97 == 0 else DeliveryStatus.SENT,
                    "updated_at": DUE + timedelta(seconds=0.3 + i * 60 / size + (i % 7) * 0.05),
                    "attempts": 1,
                    "silent": False,
                }
                for i in range(start, min(size, start + 20_000))
            ]
            with engine.begin() as conn:
                conn.execute(insert(Delivery), rows)
        with transaction(sessions) as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            alert.audience = size
            alert.sent = session.scalar(
                select(func.count()).where(
                    Delivery.alert_id == alert_id, Delivery.status == DeliveryStatus.SENT
                )
            )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE deliveries"))
    return ids[0]


def timed(engine: Engine, repeat: int, work: Callable[[Any], object]) -> tuple[float, object]:
    """Median milliseconds of ``work(session)`` over ``repeat`` runs, each in its own session."""
    sessions = make_session_factory(engine)
    times = []
    result: object = None
    for _ in range(repeat):
        with sessions() as session:
            started = time.perf_counter()
            result = work(session)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(name: str, engine: Engine, deliveries: int, others: int, repeat: int) -> None:
    log(f"{name}: {deliveries:,} deliveries for the alert, {others:,} for others")
    alert_id = fill(engine, deliveries, others)

    def uncached(session: Any) -> object:
        latency.clear_cache()
        alert = session.get(Alert, alert_id)
        return latency.alert_latency(session, alert)

    def cached(session: Any) -> object:
        return latency.alert_latency(session, session.get(Alert, alert_id))

    def count_sent(session: Any) -> object:
        return session.scalar(
            select(func.count()).where(
                Delivery.alert_id == alert_id, Delivery.status == DeliveryStatus.SENT
            )
        )

    cold, figures = timed(engine, repeat, uncached)
    warm, _ = timed(engine, repeat, cached)
    counting, _ = timed(engine, repeat, count_sent)
    print(f"\n{name}, {deliveries:,} sent deliveries (median of {repeat})")
    print(f"  latency, computed        {cold:8.1f} ms   {figures}")
    print(f"  latency, cached          {warm:8.3f} ms   (reading the alert's row included)")
    print(f"  baseline count(*)        {counting:8.1f} ms   (same rows, same run)")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=150_000, help="other alerts' deliveries")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()

    with private_schema(args.database) as url:
        engine = make_engine(url)
        measure("PostgreSQL", engine, args.deliveries, args.others, args.repeat)
        engine.dispose()
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
                migrate.upgrade(engine)
                measure("SQLite", engine, args.deliveries, args.others, args.repeat)
                engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
