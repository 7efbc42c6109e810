"""The sweeper: finds work whose trigger was lost and ends what must end.

Celery messages are only triggers; the database knows what is owed. Every few seconds (Celery
beat) the sweeper publishes due outbox rows (the API or a task died between commit and publish,
or the broker was down), re-publishes alerts and batches that should be moving but are not (the
broker was flushed or restarted, a worker was killed and its lease expired), and expires alerts
past their TTL. Re-publishing is always safe: planner and batch sender are idempotent.

Several beats may run (two hosts, so that losing one machine does not stop the safety net), and
each schedules the sweep. A lease kept in the database makes the sweep's work once-only: the
database is the one arbiter every mode has (the embedded mode has no Redis), and a row of the
existing ``heartbeats`` table holds it, so no migration is needed. The lease expires on its own,
so a sweep killed while holding it delays the next one by at most ``SWEEP_LEASE``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.lifecycle import expire_alert
from notifier.core.models import Alert, Batch, Device, DeviceSend, Heartbeat, utcnow
from notifier.core.outbox import Publisher, dispatch
from notifier.core.vocabulary import LIVE_ALERT_STATUSES, AlertStatus, BatchStatus, TriggerKind
from notifier.pipeline.preferences import CAP_WINDOW

OUTBOX_GRACE = timedelta(seconds=5)
# Longer than any sweep takes (each step is capped: 1,000 triggers, 100 alerts, 2,000 batches),
# so a live sweep never loses it; short enough that a sweep killed mid-way stalls sweeping for
# about a minute only. Hosts' clocks must agree to well within this (NTP does).
SWEEP_LEASE = timedelta(seconds=60)
LEASE_NAME = "sweeper-lease"
# A released lease: any sweep's ``now`` is later, whatever clock or test time it runs on.
_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    triggers: int = 0
    alerts_requeued: int = 0
    batches_requeued: int = 0
    alerts_expired: int = 0
    cap_sends_forgotten: int = 0
    # True when another sweep held the lease, so this one did nothing (not in as_dict: the
    # heartbeat's detail keeps the counts of the sweep that worked).
    skipped: bool = False

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "skipped"}


def sweep(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    *,
    requeue_after: timedelta,
    now: datetime | None = None,
    lease_for: timedelta = SWEEP_LEASE,
) -> SweepReport:
    """One sweep, unless another is under way (two beats schedule it twice: one does the work)."""
    now = now or utcnow()
    held_until = take_lease(sessions, LEASE_NAME, now, lease_for)
    if held_until is None:
        log.info("sweep skipped: another sweep holds the lease")
        return SweepReport(skipped=True)
    try:
        report = SweepReport()
        report.triggers = dispatch(sessions, publisher, now=now, grace=OUTBOX_GRACE)
        report.alerts_expired = _expire(sessions, now)
        report.alerts_requeued = _requeue_alerts(sessions, publisher, now, requeue_after)
        report.batches_requeued = _requeue_batches(sessions, publisher, now, requeue_after)
        report.cap_sends_forgotten = forget_old_sends(sessions, now)
        beat(sessions, "sweeper", dict(report.as_dict()), now)
    finally:
        release_lease(sessions, LEASE_NAME, held_until)
    return report


def take_lease(
    sessions: sessionmaker[Session], name: str, now: datetime, lease_for: timedelta
) -> datetime | None:
    """Hold the lease ``name`` until ``now + lease_for``; None if someone else holds it.

    A conditional UPDATE (free, or expired) is atomic on both backends: PostgreSQL re-checks
    the condition on the row a concurrent taker just committed, SQLite serialises writers. No
    lock is held between statements, so a killed holder blocks nobody past the expiry. The
    returned time identifies this holding, for :func:`release_lease`.
    """
    until = now + lease_for
    with sessions.begin() as session:
        result = session.execute(
            update(Heartbeat)
            .where(Heartbeat.name == name, Heartbeat.at <= now)
            .values(at=until, detail={"lease": "held"})
            .execution_options(synchronize_session=False)
        )
        taken: int = result.rowcount  # type: ignore[attr-defined]
    if taken:
        return until
    try:
        with sessions.begin() as session:
            if session.get(Heartbeat, name) is not None:
                return None  # held, and not yet expired
            session.add(Heartbeat(name=name, at=until, detail={"lease": "held"}))
    except IntegrityError:
        return None  # another sweep created the row first, and holds it
    return until


def release_lease(sessions: sessionmaker[Session], name: str, held_until: datetime) -> None:
    """Free the lease if this holding still has it (it may have expired and been retaken)."""
    with sessions.begin() as session:
        session.execute(
            update(Heartbeat)
            .where(Heartbeat.name == name, Heartbeat.at == held_until)
            .values(at=_RELEASED, detail={"lease": "free"})
            .execution_options(synchronize_session=False)
        )


def _expire(sessions: sessionmaker[Session], now: datetime) -> int:
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Alert.id)
                .where(Alert.status.in_(LIVE_ALERT_STATUSES), Alert.expires_at <= now)
                .limit(100)
            )
        )
    for alert_id in ids:
        with sessions.begin() as session:
            alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
            if alert is not None and alert.status in LIVE_ALERT_STATUSES:
                expire_alert(session, alert, now)
    return len(ids)


def _requeue_alerts(
    sessions: sessionmaker[Session], publisher: Publisher, now: datetime, stale: timedelta
) -> int:
    """Due alerts nobody is planning: never started, or planning that stopped moving."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Alert.id)
                .where(
                    or_(
                        and_(Alert.status == AlertStatus.SCHEDULED, Alert.send_at <= now - stale),
                        and_(
                            Alert.status == AlertStatus.SENDING,
                            Alert.planned_at.is_(None),
                            Alert.plan_progress_at <= now - stale,
                        ),
                    )
                )
                .limit(100)
            )
        )
    for alert_id in ids:
        publisher.publish(TriggerKind.PLAN, alert_id)
        with sessions.begin() as session:
            # Pushing the progress mark forward spaces out re-publishing while a backlog drains.
            session.execute(update(Alert).where(Alert.id == alert_id).values(plan_progress_at=now))
    return len(ids)


def _requeue_batches(
    sessions: sessionmaker[Session], publisher: Publisher, now: datetime, stale: timedelta
) -> int:
    """Batches owed a run: never leased, lease expired (worker died), or retry come due."""
    cutoff = now - stale
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Batch.id)
                .join(Alert, Alert.id == Batch.alert_id)
                .where(
                    Alert.status.in_(LIVE_ALERT_STATUSES),
                    or_(
                        and_(Batch.status == BatchStatus.PENDING, Batch.enqueued_at <= cutoff),
                        and_(Batch.status == BatchStatus.SENDING, Batch.lease_expires_at <= now),
                        and_(
                            Batch.status == BatchStatus.RETRY_WAIT,
                            Batch.next_attempt_at <= now,
                            Batch.enqueued_at <= cutoff,
                        ),
                    ),
                )
                .order_by(Batch.id)
                .limit(2000)
            )
        )
    for batch_id in ids:
        publisher.publish(TriggerKind.SEND, str(batch_id))
    if ids:
        with sessions.begin() as session:
            session.execute(update(Batch).where(Batch.id.in_(ids)).values(enqueued_at=now))
    return len(ids)


def forget_old_sends(sessions: sessionmaker[Session], now: datetime, chunk: int = 5000) -> int:
    """Delete daily-cap records older than the cap's 24 hours (they no longer count), a chunk
    per sweep so a backlog never makes one long transaction."""
    with sessions.begin() as session:
        old = (
            select(DeviceSend.device_id, DeviceSend.alert_id)
            .where(DeviceSend.sent_at < now - CAP_WINDOW)
            .limit(chunk)
        )
        rows = session.execute(old).all()
        if not rows:
            return 0
        session.execute(
            delete(DeviceSend).where(
                tuple_(DeviceSend.device_id, DeviceSend.alert_id).in_([tuple(r) for r in rows])
            )
        )
    return len(rows)


def delete_stale_devices(
    sessions: sessionmaker[Session], *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Forget devices not seen for ``older_than`` (FCM treats such tokens as stale), in chunks."""
    cutoff = (now or utcnow()) - older_than
    deleted = 0
    while True:
        with sessions.begin() as session:
            ids = list(
                session.scalars(select(Device.id).where(Device.last_seen_at < cutoff).limit(5000))
            )
            if not ids:
                return deleted
            session.execute(delete(Device).where(Device.id.in_(ids)))
            deleted += len(ids)


def beat(sessions: sessionmaker[Session], name: str, detail: dict[str, int], now: datetime) -> None:
    """Record that a periodic job ran (ops view: "sweeper last run")."""
    with sessions.begin() as session:
        row = session.get(Heartbeat, name)
        if row is None:
            session.add(Heartbeat(name=name, at=now, detail=detail))
        else:
            row.at, row.detail = now, dict(detail)
