"""Metrics that every process adds to and /metrics reads: counters and histograms in the database.

Sends happen in workers on any machine and webhooks in any API process, so in-process Prometheus
registries would each see a fraction. Counters live in one table instead, incremented in the same
transaction as the work they count, so the numbers agree with the deliveries table exactly and
survive restarts. Rows are upserted in sorted order so concurrent transactions never deadlock.
"""

from __future__ import annotations

import functools
import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notifier.core.models import Counter, SendMinute

SHARD_LABEL = "__shard"
SHARDS = 16

# Seconds. FCM answers in tens of milliseconds; a breaking alert should land within seconds.
FCM_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def label_string(labels: Mapping[str, str]) -> str:
    """Canonical ``a="x",b="y"`` (sorted), the key of a labelled series."""
    return ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Tally:
    """Increments collected during a unit of work, written in one go by :meth:`flush`."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], float] = defaultdict(float)

    def add(self, metric: str, amount: float = 1.0, **labels: str) -> None:
        if amount:
            self._values[(metric, label_string(labels))] += amount

    def observe(
        self, metric: str, values: Iterable[float], buckets: tuple[float, ...], count: int = 1
    ) -> None:
        """Add each value (``count`` times) to a cumulative-bucket histogram."""
        per_bucket: dict[int, int] = defaultdict(int)
        total = 0.0
        n = 0
        for value in values:
            per_bucket[bisect_left(buckets, value)] += count
            total += value * count
            n += count
        if not n:
            return
        for index, hits in per_bucket.items():
            # Store per-bucket (non-cumulative) counts; /metrics accumulates them when rendering.
            bound = "+Inf" if index >= len(buckets) else repr(buckets[index])
            self.add(f"{metric}_bucket", hits, le=bound)
        self.add(f"{metric}_sum", total)
        self.add(f"{metric}_count", n)

    def flush(self, session: Session) -> None:
        """Upsert every increment in one statement; call inside the counted work's transaction.

        Each process writes its own shard of every series (a suffix on the stored labels, summed
        away by :func:`read_counters`), so concurrent requests and workers do not queue on one
        hot row while their transactions commit. Rows are sorted so that transactions lock them
        in the same order.
        """
        if not self._values:
            return
        shard = f'{SHARD_LABEL}="{os.getpid() % SHARDS}"'
        rows = [
            {"metric": metric, "labels": f"{labels},{shard}" if labels else shard, "value": amount}
            for (metric, labels), amount in sorted(self._values.items())
        ]
        _upsert_adding(session, Counter, rows, ("metric", "labels"), "value")
        self._values.clear()


def _upsert_adding(
    session: Session, model: Any, rows: list[dict[str, Any]], key: tuple[str, ...], column: str
) -> None:
    """Insert ``rows``; where a key exists already, add the row's ``column`` to the stored one.

    One multi-row statement, built once per backend, table and number of rows (a worker's
    batches flush the same few series each time): building it per call (a clause and a
    coercion per value, its cache key) cost more CPU than PostgreSQL spends running it.
    """
    columns = tuple(rows[0])
    statement = _multi_upsert(
        session.get_bind().dialect.name, model.__table__, columns, key, column, len(rows)
    )
    session.execute(
        statement,
        {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in row.items()},
    )


@functools.lru_cache(maxsize=256)
def _multi_upsert(
    dialect: str, table: Any, columns: tuple[str, ...], key: tuple[str, ...], column: str, n: int
) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(
        [{name: bindparam(f"{name}_{i}") for name in columns} for i in range(n)]
    )
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: table.c[column] + statement.excluded[column]},
    )


def count_one(session: Session | Connection, metric: str, **labels: str) -> None:
    """Add 1 to one series, as ``Tally().add(metric, **labels)`` then ``flush`` would.

    For a request that counts one thing (a webhook delivery): the upsert is built once per
    backend instead of per call, which cost more CPU than PostgreSQL spends running it. A Core
    connection does as well as a session (the webhook's not-breaking path has no session).
    """
    shard = f'{SHARD_LABEL}="{os.getpid() % SHARDS}"'
    stored = label_string(labels)
    row = {"metric": metric, "labels": f"{stored},{shard}" if stored else shard, "value": 1.0}
    bind = session.get_bind() if isinstance(session, Session) else session
    session.execute(_single_upsert(bind.dialect.name), row)


@functools.cache
def _single_upsert(dialect: str) -> Any:
    table: Any = Counter.__table__
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=["metric", "labels"],
        set_={"value": table.c.value + statement.excluded.value},
    )


def add_minute(session: Session, when: datetime, counts: Mapping[str, int]) -> None:
    """Add outcome counts to the minute ``when`` falls in (dashboard charts)."""
    minute = when.replace(second=0, microsecond=0)
    rows = [
        {"minute": minute, "outcome": outcome, "count": count}
        for outcome, count in sorted(counts.items())
        if count
    ]
    if rows:
        _upsert_adding(session, SendMinute, rows, ("minute", "outcome"), "count")


def read_counters(session: Session) -> list[tuple[str, str, float]]:
    """Every series with its shards summed: ``(metric, labels, value)``."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for metric, labels, value in session.execute(
        select(Counter.metric, Counter.labels, Counter.value)
    ):
        kept = ",".join(p for p in labels.split(",") if p and not p.startswith(SHARD_LABEL + "="))
        totals[(metric, kept)] += value
    return [(metric, labels, value) for (metric, labels), value in sorted(totals.items())]


def minutes_since(session: Session, since: datetime) -> list[tuple[datetime, str, int]]:
    rows = session.execute(
        select(SendMinute.minute, SendMinute.outcome, SendMinute.count)
        .where(SendMinute.minute >= since)
        .order_by(SendMinute.minute)
    ).all()
    return [(m, o, c) for m, o, c in rows]
