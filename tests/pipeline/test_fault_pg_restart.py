"""Fault 10 (reliability.md): PostgreSQL restarted in the middle of a fan-out.

The shared PostgreSQL on 5432 serves every other test run on the machine, so this test never
touches it: it starts a cluster of its own (``initdb`` into a temporary directory, a free port),
points the whole stack (the workers and the test's API) at it by overriding ``pg_url``, and stops
and starts that cluster while workers are between batches, in FCM's hands and mid-commit.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.models import Batch, Delivery
from notifier.core.vocabulary import DeliveryStatus
from tests.pipeline.conftest import Stack, subscribe_many
from tests.throwaway_pg import ThrowawayPostgres, running_throwaway_postgres

AUDIENCE = 3000  # six batches of 500: with the emulator slowed, the restart lands mid-way
CONCURRENCY = 2  # so at most two batches are in FCM's hands when the server goes away
BATCH = 500
DOWN_SECONDS = 4  # long enough that workers meet a refused connection, not only a dropped one


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL cluster this test may stop and start (skips if initdb is not installed)."""
    with running_throwaway_postgres("notifier-pg-restart-") as server:
        yield server


@pytest.fixture
def pg_url(throwaway_pg: ThrowawayPostgres) -> str:
    """The pipeline's database, on the throwaway cluster instead of the shared one."""
    engine = make_engine(throwaway_pg.url)
    migrate.upgrade(engine)
    engine.dispose()
    return throwaway_pg.url


def settled(stack: Stack, alert_id: str) -> int:
    with stack.runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.status != DeliveryStatus.PENDING)
            )
            or 0
        )


def test_postgres_restarted_mid_fanout_workers_resume_and_every_device_ends_once(
    stack_factory, throwaway_pg: ThrowawayPostgres
) -> None:
    stack = stack_factory(lease_seconds="30")  # longer than the outage and a batch in FCM's hands
    tokens = subscribe_many(stack, "pgr", AUDIENCE, ["israel"])
    stack.emulator.faults(latency_ms=400)  # a batch of 500 takes about 2 s in FCM's hands
    stack.start_worker(concurrency=CONCURRENCY)
    alert_id = stack.post_alert()["id"]
    deadline = time.monotonic() + 60
    while settled(stack, alert_id) < BATCH and time.monotonic() < deadline:
        time.sleep(0.1)
    assert 0 < settled(stack, alert_id) < AUDIENCE, "the restart must land mid-way"

    throwaway_pg.stop()  # fast shutdown: every session is cut, in whatever it was doing
    time.sleep(DOWN_SECONDS)
    throwaway_pg.start()
    stack.emulator.faults()

    # The test plays the beat: its sweeps are what a deployment's beat would schedule.
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=120)

    assert view["status"] == "sent", view
    counts = view["counts"]
    assert counts["sent"] == AUDIENCE and counts["pending"] == 0
    assert sum(counts[k] for k in ("sent", "failed", "pruned", "cancelled", "suppressed")) == (
        AUDIENCE
    )
    with stack.runtime.sessions() as session:
        per_device = Counter(
            session.scalars(select(Delivery.device_id).where(Delivery.alert_id == alert_id))
        )
        statuses = Counter(
            session.scalars(select(Delivery.status).where(Delivery.alert_id == alert_id))
        )
        unfinished = session.scalar(
            select(func.count()).select_from(Batch).where(Batch.status != "done")
        )
    assert len(per_device) == AUDIENCE and set(per_device.values()) == {1}
    assert statuses == {DeliveryStatus.SENT: AUDIENCE}
    assert unfinished == 0
    received = Counter(stack.emulator.tokens())
    assert set(received) == set(tokens)
    # The batches in FCM's hands at the restart kept trying to record their answers until the
    # database came back, within their lease: no device went out twice. (A lease shorter than
    # the outage would let the sweeper hand such a batch to another worker: sent twice, at most
    # one batch per worker process, reliability.md's bound.)
    assert max(received.values()) == 1
    # The workers met the outage and backed off, and the same worker processes then finished.
    assert "while recording a sent batch; retrying" in stack.worker_logs()
    assert all(worker.poll() is None for worker in stack.workers)
