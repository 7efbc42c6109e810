"""How fast an alert reached its readers: delivery percentiles from its due time to FCM's accept.

The clock starts when the alert became due (``alerts.send_at``: the end of its hold window, moved
to the click by Send now) and stops when FCM accepted the device: a sent delivery's
``updated_at``, which the batch recorder sets in the transaction that records FCM's answer and
which nothing touches afterwards (only pending rows ever move). That is when the batch's last
answer came in, so a device's time is never early and at most one batch's sending time late
(500 devices; the pipeline fan-out test checks it against the emulator's arrivals). A device
retried before FCM
accepted it keeps the time of the attempt that was accepted, so retries count in full.

Percentiles are nearest-rank (``percentile_disc``): each is the time of an actual device, the
``ceil(p * n)``-th fastest, and both backends give the same figure for the same rows.

- PostgreSQL: one grouped statement for any number of alerts, ``percentile_disc`` over the
  alerts' sent rows (the deliveries' primary key starts with ``alert_id``).
- SQLite: per alert, a count and a single sort with ``row_number()`` that keeps the three ranks.

A sent delivery never changes and never stops being sent, so an alert's ``sent`` counter
(moved in the same transaction as the rows) names the set of rows exactly: a result is cached in
memory by alert id, ``sent`` and ``send_at``, and is reused until another device is accepted. A
finished alert is therefore computed once per process, however often the console and the
dashboard ask (at 100,000 devices one computation costs tens of milliseconds; docs/performance.md).
Lists may also reuse a sending alert's figures for a few seconds (``live_max_age``), so that
polling pages do not recompute a large fan-out on every poll.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Interval, and_, func, literal, select, type_coerce
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Session

from notifier.core.models import Alert, Delivery, UtcDateTime
from notifier.core.vocabulary import DeliveryStatus

PERCENTILES = (0.5, 0.9, 0.99)
WITHIN = timedelta(seconds=120)
CACHE_SIZE = 2048
# How stale a sending alert's figures may be in a polled list (the console polls every 2 s).
LIST_MAX_AGE = 5.0


@dataclass(frozen=True, slots=True)
class Latency:
    """An alert's delivery times in seconds from its due time; ``None`` while none was accepted.

    ``accepted`` is how many devices the figures are over; ``within_120s`` the fraction of them
    accepted within two minutes (the figure newsrooms publish: "90% within two minutes").
    """

    accepted: int
    p50_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    within_120s: float | None = None

    def as_json(self) -> dict[str, float | None]:
        """The API's ``latency`` object."""
        return {
            "p50_s": self.p50_s,
            "p90_s": self.p90_s,
            "p99_s": self.p99_s,
            "within_120s": self.within_120s,
        }


NOTHING_ACCEPTED = Latency(accepted=0)


def rank(fraction: float, n: int) -> int:
    """The 1-based nearest rank of ``fraction`` among ``n`` values, as ``percentile_disc`` picks it.

    Integer arithmetic on hundredths, so 0.9 * 10 is rank 9 and not 10 by a rounding error.
    """
    hundredths = round(fraction * 100)
    return max(1, -(-n * hundredths // 100))


def _seconds(accepted_at: datetime, due: datetime) -> float:
    """Seconds from due to accepted, never negative (a worker's clock a little behind the API's)."""
    return round(max(0.0, (accepted_at - due).total_seconds()), 3)


def _latency(due: datetime, accepted: int, within: int, times: Sequence[datetime]) -> Latency:
    if accepted == 0:
        return NOTHING_ACCEPTED
    p50, p90, p99 = (_seconds(t, due) for t in times)
    return Latency(accepted, p50, p90, p99, round(within / accepted, 4))


class _Cache:
    """Latencies by alert id, exact while ``(sent, send_at)`` stay the same; LRU-bounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, alert: Alert, live_max_age: float) -> Latency | None:
        """The cached figures if still exact, or, for an alert still sending, if computed less
        than ``live_max_age`` seconds ago."""
        with self._lock:
            entry = self._entries.get(alert.id)
            if entry is None:
                return None
            exact = entry.key == (alert.sent, alert.send_at)
            recent = (
                alert.finished_at is None
                and entry.key[1] == alert.send_at
                and time.monotonic() - entry.computed_at < live_max_age
            )
            if not (exact or recent):
                return None
            self._entries.move_to_end(alert.id)
            return entry.latency

    def put(self, alert: Alert, latency: Latency) -> None:
        with self._lock:
            self._entries[alert.id] = _Entry((alert.sent, alert.send_at), latency, time.monotonic())
            self._entries.move_to_end(alert.id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass(frozen=True, slots=True)
class _Entry:
    key: tuple[int, datetime]
    latency: Latency
    computed_at: float


_cache = _Cache(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached result (tests that rewrite delivery rows behind the counters)."""
    _cache.clear()


def alert_latency(session: Session, alert: Alert) -> Latency:
    """One alert's delivery percentiles, exact (cached only while no further device is accepted)."""
    return alert_latencies(session, [alert])[alert.id]


def alert_latencies(
    session: Session, alerts: Iterable[Alert], *, live_max_age: float = 0.0
) -> dict[str, Latency]:
    """Delivery percentiles of each alert by id: from the cache, else computed (one statement
    for all of them on PostgreSQL). An alert with nothing sent costs no query.

    ``live_max_age`` lets an alert still sending reuse figures up to that many seconds old: lists
    polled every few seconds (the console, the dashboard) would otherwise recompute a large
    fan-out's percentiles on every poll, on the database the fan-out itself is using. A finished
    alert's figures are always exact.
    """
    found: dict[str, Latency] = {}
    missing: list[Alert] = []
    for alert in alerts:
        cached = NOTHING_ACCEPTED if alert.sent == 0 else _cache.get(alert, live_max_age)
        if cached is None:
            missing.append(alert)
        else:
            found[alert.id] = cached
    if missing:
        compute = _on_postgresql if session.get_bind().dialect.name == "postgresql" else _on_sqlite
        for alert, latency in compute(session, missing):
            _cache.put(alert, latency)
            found[alert.id] = latency
    return found


def _on_postgresql(session: Session, alerts: list[Alert]) -> list[tuple[Alert, Latency]]:
    """One grouped statement: count, accepted within 120 s and ``percentile_disc`` per alert."""
    rows = session.execute(
        select(
            Delivery.alert_id,
            func.count(),
            func.count().filter(Delivery.updated_at <= Alert.send_at + literal(WITHIN, Interval())),
            # Typed by hand: SQLAlchemy would read the array back as one UtcDateTime.
            type_coerce(
                func.percentile_disc(pg.array(PERCENTILES)).within_group(Delivery.updated_at),
                pg.ARRAY(UtcDateTime()),
            ),
        )
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(
            Delivery.alert_id.in_([a.id for a in alerts]),
            Delivery.status == DeliveryStatus.SENT,
        )
        .group_by(Delivery.alert_id)
    ).all()
    by_id = {alert_id: (n, within, times) for alert_id, n, within, times in rows}
    results = []
    for alert in alerts:
        n, within, times = by_id.get(alert.id, (0, 0, []))
        results.append((alert, _latency(alert.send_at, n, within, times)))
    return results


def _on_sqlite(session: Session, alerts: list[Alert]) -> list[tuple[Alert, Latency]]:
    """Per alert: count the sent rows (and those within 120 s), then one sorted pass that keeps
    the rows at the three nearest ranks (SQLite has no ordered-set aggregates)."""
    results = []
    for alert in alerts:
        sent = and_(Delivery.alert_id == alert.id, Delivery.status == DeliveryStatus.SENT)
        n, within = session.execute(
            select(
                func.count(),
                func.count().filter(Delivery.updated_at <= alert.send_at + WITHIN),
            ).where(sent)
        ).one()
        if n == 0:
            results.append((alert, NOTHING_ACCEPTED))
            continue
        ranks = [rank(f, n) for f in PERCENTILES]
        ordered = (
            select(
                Delivery.updated_at.label("accepted_at"),
                func.row_number().over(order_by=Delivery.updated_at).label("position"),
            )
            .where(sent)
            .subquery()
        )
        at_rank = dict(
            session.execute(
                select(ordered.c.position, ordered.c.accepted_at).where(
                    ordered.c.position.in_(ranks)
                )
            ).all()
        )
        times = [at_rank[r] for r in ranks]
        results.append((alert, _latency(alert.send_at, n, within, times)))
    return results
