"""PostgreSQL CPU per device of a fan-out, measured alone, by schema and planner (issue 12).

The real planner (``_plan_page``, one transaction per page of 500) and the real send path
(``send_batch``: lease, preferences, recording) run in this one process on one connection,
against a sender that accepts every device at once, so the only CPU measured is that one
backend's, read from ``/proc/<pid>/schedstat``: the other users of a shared server do not enter the
figure, as they do in ``bench/fanout.py``'s. Nothing is ANALYZEd after the import, as in the
fan-out (the deliveries' statistics are stale while an alert fans out).

Each variant given is run in turns (``--rounds``), on the same devices, the table emptied before
each alert: a fillfactor of ``deliveries``, followed by ``fk`` for the foreign key to ``alerts``
that migration 0006 dropped, and by ``:portable`` for the planner's portable statements (what
SQLite runs, and PostgreSQL ran before a page became one statement) instead of its one-statement
page. The first is the baseline of the same run. Printed per device: the backend's CPU for
planning and for leasing plus recording, the WAL the server wrote meanwhile (the whole server's:
noisy when others write), the share of the deliveries' updates that were HOT (no index entries
written, the row stays on its page) and the table's size once sent. ``--statements`` adds the
backend's CPU per statement text, from ``/proc/<pid>/schedstat`` (exact, where ``stat`` counts
10 ms ticks): which statements a device's cost is in.

    .venv/bin/python bench/pg_cpu.py                          # 100,000 devices, 38:portable,38
    .venv/bin/python bench/pg_cpu.py --devices 30000 --variants 100fk,38fk,38 --rounds 1
    .venv/bin/python bench/pg_cpu.py --devices 30000 --rounds 1 --statements
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

from _common import DEFAULT_DATABASE, NullSender, deliveries_updates, log, private_schema
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import Batch, utcnow
from notifier.pipeline.planner import _plan_page
from notifier.pipeline.quota import LocalTokenBucket
from notifier.pipeline.send import send_batch
from notifier.subscriptions.bulk_import import import_devices
from notifier.subscriptions.topics import load_catalogue, sync_topics

FCM_ID = 1500415314455276
FK = "fk_deliveries_alert_id_alerts"


def fcm_like_name(device_id: int) -> str:
    """As long as an FCM message name: the recorded row's width decides if its update is HOT."""
    return f"projects/notifier-bench/messages/0:{FCM_ID + device_id}%31bd1c9631bd1c96"


def device_lines(n: int) -> list[bytes]:
    """As bench/fanout.py: half the audience follows both topics, each gets the alert once."""
    return [
        json.dumps(
            {
                "token": f"bench-{i:07d}:APA91b{'x' * 120}",
                "platform": "android",
                "topics": ["israel", "breaking"] if i % 2 else ["israel"],
            }
        ).encode()
        for i in range(n)
    ]


def backend_ns(pid: int) -> int:
    """The backend's time on a CPU so far, in nanoseconds (``/proc/<pid>/schedstat``).

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms), too coarse for one statement of a few
    hundred microseconds; the scheduler's own count is exact.
    """
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class StatementCpu:
    """The backend's CPU per statement text, by phase: which statements a device's cost is in.

    The backend is idle between statements (one connection, this process waits for each answer),
    so its CPU between a statement's start and its end is that statement's. ``COMMIT`` is not a
    cursor execution: what the backend spends outside statements is the row ``(commits, other)``.
    Reading ``/proc`` costs this process, not the backend.
    """

    def __init__(self, engine: Engine, backend: int) -> None:
        self.backend = backend
        self.variant, self.phase = "", "plan"
        self.ns: dict[tuple[str, str, str], int] = defaultdict(int)
        self.calls: dict[tuple[str, str, str], int] = defaultdict(int)
        # Each call's CPU with the page it planned (its place in the alert): does a page cost
        # the same at the start of the audience as at its end?
        self.page = 0
        self.pages = 0
        self.by_page: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
        self._start = 0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args: object) -> None:
        self._start = backend_ns(self.backend)

    def _after(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        key = (self.variant, self.phase, _shape(statement))
        ns = backend_ns(self.backend) - self._start
        self.ns[key] += ns
        self.calls[key] += 1
        self.by_page[key].append((self.page, ns))

    def report(self, variant: str, devices: int, totals: dict[str, float]) -> list[str]:
        """``variant``'s statements over all its rounds: ``devices`` and ``totals`` summed too."""
        lines = [f"{variant}, per device over its rounds:"]
        for phase in ("plan", "send"):  # "between" is left out
            keys = sorted(
                (k for k in self.ns if k[:2] == (variant, phase)), key=lambda k: -self.ns[k]
            )
            inside = sum(self.ns[k] for k in keys) / 1e9
            lines.append(f"  {phase}: {totals[phase] / devices * 1e6:.1f} µs")
            for key in keys:
                per = self.ns[key] / 1e3 / devices
                lines.append(f"    {per:6.2f} µs  {self.calls[key]:>6} calls  {key[2]}")
                calls = self.by_page[key]
                if phase == "plan" and self.pages >= 20 and len(calls) >= self.pages:
                    tenth = self.pages // 10
                    head = [ns for page, ns in calls if page < tenth]
                    tail = [ns for page, ns in calls if page >= self.pages - tenth]
                    lines.append(
                        f"{'':>30}pages' first tenth {sum(head) / len(head) / 1e3:.0f} µs a call, "
                        f"last tenth {sum(tail) / max(1, len(tail)) / 1e3:.0f} µs"
                    )
            rest = (totals[phase] - inside) / devices * 1e6
            lines.append(f"    {rest:6.2f} µs  (commits, other)")
        return lines


def _shape(statement: str) -> str:
    """A statement's text, shortened to what tells it apart."""
    flat = re.sub(r"\s+", " ", statement).strip()
    return flat if len(flat) <= 110 else flat[:107] + "..."


def one_alert(
    sessions: sessionmaker[Session],
    backend: int,
    *,
    planner: str = "cte",
    statements: StatementCpu | None = None,
) -> dict[str, float]:
    """Plan and send one alert to everyone; the backend's CPU seconds for each part.

    ``planner``: ``cte`` plans each page in one statement (the planner's default on
    PostgreSQL), ``portable`` with the statements SQLite runs.
    """
    with transaction(sessions) as session:
        alert_id = create_alert(
            session,
            AlertDraft(headline="pg", url="https://news.example/s", topics=("israel", "breaking")),
            default_hold=0,
            default_ttl=3600,
        ).id
    if statements is not None:
        statements.phase, statements.page = "plan", 0
    cpu0 = backend_ns(backend)
    devices = 0
    while True:
        with sessions.begin() as session:
            step = _plan_page(session, alert_id, utcnow(), one_statement=planner == "cte")
        if step is None:
            break
        devices += step[1]
        if statements is not None:
            statements.page += 1
    cpu1 = backend_ns(backend)
    if statements is not None:
        statements.phase, statements.pages = "send", statements.page
    with sessions() as session:
        ids = list(
            session.scalars(select(Batch.id).where(Batch.alert_id == alert_id).order_by(Batch.seq))
        )
    for batch_id in ids:
        result = send_batch(
            sessions,
            batch_id,
            sender=NullSender(fcm_like_name),
            limiter=LocalTokenBucket(10**9),
            lease_seconds=60,
            max_attempts=3,
        )
        assert result.state == "done", result
    cpu2 = backend_ns(backend)
    if statements is not None:
        statements.phase = "between"  # emptying the table, reading counters: neither part
    return {"devices": devices, "plan": (cpu1 - cpu0) / 1e9, "send": (cpu2 - cpu1) / 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument(
        "--variants",
        default="38:portable,38",
        help="deliveries' fillfactors, each with 'fk' for the foreign key and ':portable' for the "
        "planner's portable statements; the first the baseline",
    )
    parser.add_argument("--rounds", type=int, default=2, help="times each variant runs")
    parser.add_argument(
        "--statements", action="store_true", help="the backend's CPU per statement text too"
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    variants = args.variants.split(",")
    log(f"load average at the start: {os.getloadavg()[0]:.2f}")
    with private_schema(args.database, prefix="pgcpu") as url:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            sync_topics(session, load_catalogue(Path("config/topics.toml")))
        log(f"importing {args.devices:,} devices")
        import_devices(engine, device_lines(args.devices))
        with engine.connect() as conn:
            backend = conn.scalar(text("SELECT pg_backend_pid()"))
        statements = StatementCpu(engine, backend) if args.statements else None
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        rows = []
        for round_ in range(args.rounds):
            for variant in variants:
                schema, _, planner = variant.partition(":")
                ff = int(schema.removesuffix("fk"))
                with engine.begin() as conn:
                    conn.execute(text("TRUNCATE deliveries"))
                    conn.execute(text(f"ALTER TABLE deliveries SET (fillfactor = {ff:d})"))
                    conn.execute(text(f"ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS {FK}"))
                    if schema.endswith("fk"):
                        conn.execute(
                            text(
                                f"ALTER TABLE deliveries ADD CONSTRAINT {FK} FOREIGN KEY "
                                "(alert_id) REFERENCES alerts (id) ON DELETE CASCADE"
                            )
                        )
                    conn.execute(text("SELECT pg_stat_force_next_flush()"))
                time.sleep(1.1)
                with engine.connect() as conn:
                    upd0, hot0 = deliveries_updates(conn)
                    lsn0 = conn.scalar(text("SELECT pg_current_wal_lsn()"))
                log(f"round {round_ + 1}, {variant}: planning and sending")
                if statements is not None:
                    statements.variant = variant
                cpu = one_alert(sessions, backend, planner=planner or "cte", statements=statements)
                for part, value in cpu.items():
                    sums[variant][part] += value
                with engine.connect() as conn:
                    wal = conn.scalar(
                        text("SELECT pg_current_wal_lsn() - CAST(:lsn AS pg_lsn)"), {"lsn": lsn0}
                    )
                    conn.execute(text("SELECT pg_stat_force_next_flush()"))
                time.sleep(1.1)
                with engine.connect() as conn:
                    upd1, hot1 = deliveries_updates(conn)
                    size = conn.scalar(text("SELECT pg_relation_size('deliveries')"))
                    index_size = conn.scalar(text("SELECT pg_indexes_size('deliveries')"))
                n = cpu["devices"]
                rows.append(
                    (
                        round_ + 1,
                        variant,
                        os.getloadavg()[0],
                        cpu["plan"] / n * 1e6,
                        cpu["send"] / n * 1e6,
                        (cpu["plan"] + cpu["send"]) / n * 1e6,
                        float(wal) / n,
                        (hot1 - hot0) / max(1, upd1 - upd0),
                        size / 2**20,
                        index_size / 2**20,
                    )
                )
                log("  " + format_row(rows[-1]))
        engine.dispose()
    print()
    if statements is not None:
        for variant in variants:
            total = sums[variant]
            print("\n".join(statements.report(variant, int(total["devices"]), total)))
        print()
    print(
        f"PostgreSQL backend CPU per device, {args.devices:,} devices, alone "
        "(plan: the planner's pages; send: lease + recording)"
    )
    print(
        "round      variant  load   plan µs  send µs  total µs  WAL B/dev  HOT   heap MiB  idx MiB"
    )
    for row in rows:
        print(format_row(row))
    return 0


def format_row(row: tuple[int, str, float, float, float, float, float, float, float, float]) -> str:
    r, ff, load, plan, send, total, wal, hot, heap, idx = row
    return (
        f"{r:>5}  {ff:>11}  {load:4.1f}  {plan:8.1f} {send:8.1f} {total:9.1f}  {wal:9.0f}  "
        f"{hot:4.0%}  {heap:8.1f}  {idx:7.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
