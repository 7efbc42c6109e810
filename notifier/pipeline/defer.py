"""Giving a leased batch back unsent, to run again when its app's quota has tokens for it.

With several apps, a batch whose app's bucket is far in debt would otherwise sleep in its task
for the tokens, holding a worker slot that another app's batch could use (issue 13: "a quota or
outage in one app never slows the others"). Instead the sender gives the lease back and the
task re-publishes the batch with a countdown of the wait.

Giving back leaves the batch as if this lease had never been taken:

- the batch waits as a batch FCM asked to retry does (``retry_wait`` at ``next_attempt_at``, no
  owner), so a duplicate message finds it not due and the sweeper re-publishes it if the
  countdown message is lost;
- the attempt is not counted (``attempts - 1``): a deferral is not a failure, so a batch
  deferred many times is never given up for it;
- what the lease decided for readers' preferences is undone: the daily-cap places it took for
  the batch's pending devices go back (:func:`notifier.alerts.cap_places.release_unsent_places`)
  and the quiet-hours ``silent`` marks are cleared, so the next lease decides afresh, at the
  time it actually sends. Keeping the places would let a later lease, which counts as a first
  attempt, suppress a device without giving its place back.

No delivery changes status, so the alert's counts are untouched and still add up.

Most deferrals cost less than that: before leasing, :func:`defer_unleased` asks the bucket
(taking nothing) and defers a batch whose tokens are far, for a read and a write by primary key.
While workers outpace an app's quota its batches come back every couple of seconds to ask again,
and a lease reads the batch's 500 deliveries. The lease's own check remains for the race of two
workers that both found the tokens near.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.cap_places import release_unsent_places
from notifier.core.counters import Tally
from notifier.core.models import Alert, Batch, Delivery
from notifier.core.vocabulary import WAITING_BATCH_STATUSES, BatchStatus, DeliveryStatus
from notifier.pipeline.quota import SendLimiter
from notifier.pipeline.record import BatchResult, alert_of

DEFERRED = "deferred"


def give_back(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    *,
    wait: float,
    now: datetime,
    tally: Tally,
) -> BatchResult:
    """Give back ``owner``'s lease of the batch, to run again in ``wait`` seconds.

    ``tally`` (the run's metrics) is written with it when the lease was given back.

    One UPDATE guarded by the owner: a worker that lost its lease meanwhile changes nothing
    (``lease_lost``). The alert is locked (shared) before the batch, the lease's lock order.
    """
    with sessions.begin() as session:
        alert_id = alert_of(session, batch_id)
        if alert_id is None:
            return BatchResult(batch_id, "lease_lost")
        session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update(read=True))
        given = session.execute(
            update(Batch)
            .where(
                Batch.id == batch_id,
                Batch.lease_owner == owner,
                Batch.status == BatchStatus.SENDING,
            )
            .values(
                status=BatchStatus.RETRY_WAIT,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now + timedelta(seconds=wait),
                enqueued_at=now,
                attempts=Batch.attempts - 1,
            )
            .execution_options(synchronize_session=False)
        )
        if given.rowcount != 1:  # type: ignore[attr-defined]
            return BatchResult(batch_id, "lease_lost")
        release_unsent_places(session, alert_id, [batch_id])
        session.execute(
            update(Delivery)
            .where(
                Delivery.batch_id == batch_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.silent.is_(True),
            )
            .values(silent=False)
            .execution_options(synchronize_session=False)
        )
        tally.flush(session)
    return BatchResult(batch_id, DEFERRED, retry_in=wait)


def defer_unleased(
    sessions: sessionmaker[Session],
    batch_id: int,
    *,
    limiter_of: Callable[[str], SendLimiter],
    max_wait: float,
    now: datetime,
) -> BatchResult | None:
    """Defer a batch due to run whose app's first chunk would wait past ``max_wait``, unleased.

    None when it is not that (not waiting, not due, or its tokens near): the lease decides. The
    bucket is asked for a full first chunk (the batch's planned size, at most the chunk), which
    may be a few devices more than are still pending: at worst a deferral by a fraction of a
    second more. Touching ``enqueued_at`` keeps the sweeper from re-publishing a batch whose
    countdown message is on its way; nothing else changes.
    """
    with sessions() as session:
        row = session.execute(
            select(Batch.app, Batch.size, Batch.status, Batch.next_attempt_at).where(
                Batch.id == batch_id
            )
        ).first()
    if row is None or row.status not in WAITING_BATCH_STATUSES:
        return None
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return None  # a retry not yet due: the lease answers not_due
    limiter = limiter_of(row.app)
    wait = limiter.peek(max(1, min(row.size, limiter.max_chunk)))
    if wait <= max_wait:
        return None
    with sessions.begin() as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == row.status)
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
        tally = Tally()
        tally.add("notifier_app_quota_deferrals_total", app=row.app)
        tally.flush(session)
    return BatchResult(batch_id, DEFERRED, retry_in=wait)
