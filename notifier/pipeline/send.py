"""Sending one batch: lease it, send its pending devices, record every outcome, decide retries.

Idempotent by construction, because Celery delivers at least once:
- a batch already finished is not sent again when its message is redelivered;
- a batch is leased (owner + expiry) before sending, so a duplicate message finds it taken; a
  lease that expires (the worker died) can be taken over, which is the only way a device is sent
  twice, and that duplicate collapses on the device (collapse key = the alert);
- outcomes are recorded only by the lease owner, and only onto deliveries still pending, and the
  counters move by exactly the rows changed, so the counts always add up.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import BigInteger, String, column, select, update, values
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.lifecycle import expire_alert, finish_if_complete
from notifier.alerts.service import LIVE, get_alert, to_push_alert
from notifier.core.counters import DELIVERY_LATENCY_BUCKETS, FCM_LATENCY_BUCKETS, Tally, add_minute
from notifier.core.models import Alert, Batch, Delivery, Device, utcnow
from notifier.fcm.types import Accepted, Outcome, PushAlert, Retry, Target
from notifier.pipeline.quota import SendLimiter

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0


class Sender(Protocol):
    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]: ...


@dataclass
class BatchResult:
    """What happened to a batch in one run; ``retry_in`` asks the caller to run it again later."""

    batch_id: int
    state: str  # "done" | "retry" | "skipped" | "cancelled" | "expired" | "lease_lost" | "not_due"
    counts: dict[str, int] = field(default_factory=dict)
    retry_in: float | None = None
    rate_wait: float = 0.0


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than FCM's Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempt - 1)))
    return max(retry_after or 0.0, random.uniform(ceiling / 2, ceiling))


def send_batch(
    sessions: sessionmaker[Session],
    batch_id: int,
    *,
    sender: Sender,
    limiter: SendLimiter,
    lease_seconds: int,
    max_attempts: int,
    public_url: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> BatchResult:
    """Send batch ``batch_id`` once: lease it, send its pending devices, record the outcomes.

    ``clock`` gives the current UTC time (leases, retry times and the TTL are judged by it); tests
    pass a controllable one.
    """
    owner = str(uuid.uuid4())
    leased = _lease(sessions, batch_id, owner, lease_seconds, public_url, clock)
    if isinstance(leased, BatchResult):
        return leased
    push_alert, targets = leased
    tally = Tally()
    outcomes: list[Outcome] = []
    latencies: list[float] = []
    for start in range(0, len(targets), limiter.max_chunk):
        chunk = targets[start : start + limiter.max_chunk]
        waited = limiter.acquire(len(chunk))
        if waited > 0:
            tally.add("notifier_rate_limit_waits_total")
            tally.add("notifier_rate_limit_wait_seconds_total", waited)
        outcomes.extend(sender.send_batch(push_alert, chunk, latencies=latencies))
    tally.observe("notifier_fcm_request_seconds", latencies, FCM_LATENCY_BUCKETS)
    return _record(sessions, batch_id, owner, outcomes, max_attempts, tally, clock())


def _lease(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    lease_seconds: int,
    public_url: str | None,
    clock: Callable[[], datetime],
) -> BatchResult | tuple[PushAlert, list[Target]]:
    now = clock()
    with sessions.begin() as session:
        # Every transaction that locks an alert and its batches takes the alert first (shared
        # here, so many batches lease at once; cancel and record take it exclusively): one lock
        # order, so they never deadlock.
        alert_id = _alert_of(session, batch_id)
        if alert_id is None:
            return BatchResult(batch_id, "skipped")
        alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update(read=True))
        batch = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
        if alert is None or batch is None:
            # Deleted (with its alert) after the first read: there is nothing left to send.
            return BatchResult(batch_id, "skipped")
        verdict = _not_to_send(alert, batch, now)
        if verdict is None:
            rows = session.execute(
                select(Delivery.device_id, Device.token, Device.platform, Device.state)
                # Outer join: a device that unsubscribed entirely since planning has no row.
                .outerjoin(Device, Device.id == Delivery.device_id)
                .where(Delivery.batch_id == batch.id, Delivery.status == "pending")
                .order_by(Delivery.device_id)
            ).all()
            batch.status, batch.lease_owner = "sending", owner
            batch.lease_expires_at = now + timedelta(seconds=lease_seconds)
            batch.attempts += 1
            push_alert = to_push_alert(alert, public_url)
    if verdict is not None:
        if verdict.state == "cancelled":
            _close_batch(sessions, batch_id, now)
        return verdict
    targets = [Target(r.device_id, r.token, r.platform) for r in rows if r.state == "active"]
    dead = [r.device_id for r in rows if r.state is not None and r.state != "active"]
    missing = [r.device_id for r in rows if r.state is None]
    if dead or missing:
        # Pruned by another alert (or unsubscribed) since planning: recorded, not sent.
        _record_terminal(sessions, batch_id, owner, {"pruned": dead, "failed": missing}, clock())
    return push_alert, targets


def _close_batch(sessions: sessionmaker[Session], batch_id: int, now: datetime) -> None:
    """A batch of an alert that was cancelled or finished: its pending devices are cancelled.

    Its own transaction, with the alert locked exclusively before the batch (it changes the
    alert's counters), keeps the one lock order.
    """
    with sessions.begin() as session:
        alert_id = _alert_of(session, batch_id)
        if alert_id is None:
            return
        alert = get_alert(session, alert_id, for_update=True)
        batch = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
        if batch is None or batch.status in ("done", "cancelled"):
            return
        result = session.execute(
            update(Delivery)
            .where(Delivery.batch_id == batch.id, Delivery.status == "pending")
            .values(status="cancelled", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        alert.cancelled_count += result.rowcount  # type: ignore[attr-defined]
        batch.status, batch.finished_at = "cancelled", now


def _record_terminal(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    groups: dict[str, list[int]],
    now: datetime,
) -> None:
    with sessions.begin() as session:
        owned = _owned_batch(session, batch_id, owner)
        if owned is None:
            return
        alert, _batch = owned
        for status, ids in groups.items():
            code = "device_gone" if status == "failed" else "already_pruned"
            _move(session, alert, ids, status, code, now)


def _not_to_send(alert: Alert, batch: Batch, now: datetime) -> BatchResult | None:
    """Why this run must not send the batch (done, leased, not due, stopped), or None."""
    if batch.status in ("done", "cancelled"):
        return BatchResult(batch.id, "skipped")
    if batch.status == "sending" and batch.lease_expires_at and batch.lease_expires_at > now:
        return BatchResult(batch.id, "skipped")  # a duplicate message; the owner is on it
    if batch.status == "retry_wait" and batch.next_attempt_at and batch.next_attempt_at > now:
        return BatchResult(
            batch.id, "not_due", retry_in=(batch.next_attempt_at - now).total_seconds()
        )
    if alert.status not in LIVE:
        return BatchResult(batch.id, "cancelled")  # closed in a transaction of its own
    if alert.expires_at <= now:
        return BatchResult(batch.id, "expired")  # the sweeper expires the alert and its devices
    return None


def _alert_of(session: Session, batch_id: int) -> str | None:
    """The batch's alert id (never changes, so it is read without a lock)."""
    return session.scalar(select(Batch.alert_id).where(Batch.id == batch_id))


def _owned_batch(session: Session, batch_id: int, owner: str) -> tuple[Alert, Batch] | None:
    """The alert and the batch, locked in that order, if ``owner`` still holds the lease."""
    alert_id = _alert_of(session, batch_id)
    if alert_id is None:
        return None
    alert = get_alert(session, alert_id, for_update=True)
    batch = session.scalar(select(Batch).where(Batch.id == batch_id).with_for_update())
    if batch is None or batch.lease_owner != owner or batch.status != "sending":
        return None
    return alert, batch


def _move(
    session: Session,
    alert: Alert,
    device_ids: Sequence[int],
    status: str,
    error_code: str | None,
    now: datetime,
) -> int:
    """Move pending deliveries to a terminal status and the alert's counter by the rows moved."""
    if not device_ids:
        return 0
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.device_id.in_(list(device_ids)),
            Delivery.status == "pending",
        )
        .values(
            status=status, error_code=error_code, updated_at=now, attempts=Delivery.attempts + 1
        )
        .execution_options(synchronize_session=False)
    )
    moved: int = result.rowcount  # type: ignore[attr-defined]
    counter = {
        "sent": "sent",
        "failed": "failed",
        "pruned": "pruned",
        "cancelled": "cancelled_count",
    }
    setattr(alert, counter[status], getattr(alert, counter[status]) + moved)
    return moved


def _accept(
    session: Session, alert: Alert, batch_id: int, accepted: list[Accepted], now: datetime
) -> int:
    """Mark accepted devices sent, with FCM's message name; returns the rows moved.

    PostgreSQL does it in one UPDATE ... FROM (VALUES ...); SQLite (no column aliases on VALUES)
    moves the rows, then stores the names by primary key.
    """
    if not accepted:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        moved = _move(session, alert, [o.device_id for o in accepted], "sent", None, now)
        session.execute(
            update(Delivery),
            [
                {"alert_id": alert.id, "device_id": o.device_id, "message_name": o.message_name}
                for o in accepted
            ],
        )
        return moved
    names = values(column("device_id", BigInteger), column("name", String), name="accepted").data(
        [(o.device_id, o.message_name) for o in accepted]
    )
    result = session.execute(
        update(Delivery)
        .where(
            # The batch narrows the join to its own rows (an index range), whatever the
            # planner's statistics say; by alert alone it can scan the whole audience.
            Delivery.batch_id == batch_id,
            Delivery.alert_id == alert.id,
            Delivery.device_id == names.c.device_id,
            Delivery.status == "pending",
        )
        .values(
            status="sent",
            message_name=names.c.name,
            updated_at=now,
            attempts=Delivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    sent: int = result.rowcount  # type: ignore[attr-defined]
    alert.sent += sent
    return sent


def _record(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    outcomes: list[Outcome],
    max_attempts: int,
    tally: Tally,
    now: datetime,
) -> BatchResult:
    with sessions.begin() as session:
        owned = _owned_batch(session, batch_id, owner)
        if owned is None:
            return BatchResult(batch_id, "lease_lost")
        alert, batch = owned
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        by_code: dict[tuple[str, str], list[int]] = defaultdict(list)
        retries: list[Retry] = []
        for outcome in outcomes:
            if outcome.kind == "prune":
                by_code[("pruned", outcome.reason)].append(outcome.device_id)
            elif outcome.kind == "fatal":
                by_code[("failed", outcome.reason)].append(outcome.device_id)
            elif outcome.kind == "retry":
                retries.append(outcome)
        counts = {"sent": _accept(session, alert, batch.id, accepted, now)}
        if accepted:
            alert.first_send_at = alert.first_send_at or now
            alert.last_send_at = now
        for (status, code), ids in by_code.items():
            counts[status] = counts.get(status, 0) + _move(session, alert, ids, status, code, now)
            if status == "pruned":
                session.execute(
                    update(Device)
                    .where(Device.id.in_(ids))
                    .values(state="dead", dead_reason=code, dead_at=now)
                )
        result = BatchResult(batch_id, "done", counts)
        retry_in = _schedule_retries(session, alert, batch, retries, max_attempts, now, tally)
        _count(tally, alert, counts, by_code, retries, now)
        tally.flush(session)
        add_minute(session, now, {**counts, "retried": len(retries) if retry_in else 0})
        if retry_in is None:
            batch.status, batch.finished_at, batch.lease_owner = "done", now, None
        else:
            result.state, result.retry_in = "retry", retry_in
            counts["retry"] = len(retries)
        if alert.expires_at <= now:
            expire_alert(session, alert, now)
        else:
            finish_if_complete(session, alert, now)
    return result


def _count(
    tally: Tally,
    alert: Alert,
    counts: dict[str, int],
    by_code: dict[tuple[str, str], list[int]],
    retries: list[Retry],
    now: datetime,
) -> None:
    """Metrics for one recorded batch: outcomes by FCM code, prunes, end-to-end latency."""
    tally.add("notifier_sends_total", counts.get("sent", 0), outcome="accepted", code="")
    for (status, code), ids in by_code.items():
        outcome = "pruned" if status == "pruned" else "failed"
        tally.add("notifier_sends_total", len(ids), outcome=outcome, code=code)
        if status == "pruned":
            tally.add("notifier_tokens_pruned_total", len(ids), reason=code)
    for retry in retries:
        tally.add("notifier_sends_total", outcome="retry", code=retry.reason)
    if counts.get("sent") and alert.event_received_at is not None:
        latency = (now - alert.event_received_at).total_seconds()
        tally.observe(
            "notifier_delivery_latency_seconds", [latency], DELIVERY_LATENCY_BUCKETS, counts["sent"]
        )


def _schedule_retries(
    session: Session,
    alert: Alert,
    batch: Batch,
    retries: list[Retry],
    max_attempts: int,
    now: datetime,
    tally: Tally,
) -> float | None:
    """Keep retryable devices pending for another attempt, or fail them when out of time."""
    if not retries:
        return None
    ids = [r.device_id for r in retries]
    session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, Delivery.device_id.in_(ids))
        .values(attempts=Delivery.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    delay = backoff(batch.attempts, max((r.retry_after or 0.0) for r in retries))
    retry_at = now + timedelta(seconds=delay)
    if batch.attempts >= max_attempts or retry_at >= alert.expires_at:
        by_reason: dict[str, list[int]] = defaultdict(list)
        for r in retries:
            by_reason[f"{r.reason}:gave_up"[:64]].append(r.device_id)
        for code, dev_ids in by_reason.items():
            moved = _move(session, alert, dev_ids, "failed", code, now)
            tally.add("notifier_sends_total", moved, outcome="failed", code=code.split(":")[0])
        return None
    batch.status, batch.lease_owner, batch.lease_expires_at = "retry_wait", None, None
    batch.next_attempt_at, batch.enqueued_at = retry_at, now
    log.info(
        "batch will retry",
        extra={
            "fields": {"batch_id": batch.id, "devices": len(ids), "in_seconds": round(delay, 1)}
        },
    )
    return delay
