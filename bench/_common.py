"""What the benchmarks share: a timestamped log line, a process tree's memory, a throwaway schema.

The scripts run as ``.venv/bin/python bench/NAME.py``, so this folder is on ``sys.path`` and they
import it as ``_common``. latency.py, import_devices.py, fanout.py, soak.py, pg_cpu.py and
plan_scale.py use it; quota.py and intake.py still carry their own copies of some of its lines.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, text

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.settings import normalise_database_url
from notifier.fcm.types import Accepted, Outcome, PushAlert, Target

DEFAULT_DATABASE = os.environ.get(
    "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def log(message: str) -> None:
    """Print ``message`` at once with the wall-clock time, so a long run shows where it is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (0 if it is gone)."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@contextmanager
def private_schema(database: str = DEFAULT_DATABASE, prefix: str = "bench") -> Iterator[str]:
    """The URL of a migrated schema of the benchmark's own in ``database``, dropped afterwards.

    A schema of its own (as tests/conftest.py makes) keeps a run's millions of rows away from
    anyone else's data on the shared server, and dropping it, even after Ctrl-C, leaves nothing.
    """
    base = normalise_database_url(database)
    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


class NullSender:
    """Accepts every device at once: a benchmark that times notifier's side, not FCM's.

    ``name`` makes each device's message name; the default is short, and a benchmark whose
    figure depends on the recorded row's width passes one as long as FCM's.
    """

    def __init__(self, name: Callable[[int], str] = lambda d: f"projects/p/messages/{d}") -> None:
        self._name = name

    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]:
        name = self._name
        return [Accepted(t.device_id, name(t.device_id)) for t in targets]


def deliveries_updates(conn: Connection) -> tuple[int, int]:
    """Updates of this schema's ``deliveries`` so far, and how many were HOT (no index entry).

    PostgreSQL publishes these counters about once a second: read them a moment after the work.
    """
    updates, hot = conn.execute(
        text(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'deliveries' AND schemaname = current_schema()"
        )
    ).one()
    return int(updates), int(hot)
