"""Recording a sent batch: classify the outcomes, apply them, schedule the retries.

The three steps run in one transaction, taken only by the batch's lease owner, so a worker that
lost its lease records nothing and a batch is never counted twice:

- :func:`classify` sorts FCM's per-device outcomes into accepted, ended (pruned or failed, by
  code) and retryable; it is pure.
- :func:`apply_outcomes` moves pending deliveries to their terminal status, marks pruned tokens
  dead and moves the alert's counters by exactly the rows changed, so the counts always add up.
- :func:`schedule_retries` keeps retryable devices pending and sets when the batch runs again
  (backoff with jitter, never sooner than Retry-After), or fails them when out of attempts or
  past the alert's TTL; :func:`decide_retry` is the pure part of that decision.

The statements are shaped for a batch of 500 (see docs/performance.md): one statement per step
and per FCM error code, never one per device.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    SQLColumnExpression,
    any_,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.lifecycle import expire_alert, finish_if_complete
from notifier.alerts.service import count_settled, count_suppressed
from notifier.core.counters import DELIVERY_LATENCY_BUCKETS, Tally, add_minute
from notifier.core.db import insert_ignoring_conflicts
from notifier.core.models import Alert, Batch, Delivery, Device, DeviceSend
from notifier.core.vocabulary import BatchStatus, DeliveryStatus, DeviceState, Urgency
from notifier.fcm.types import Accepted, Fatal, Outcome, Prune, Retry
from notifier.pipeline.preferences import (
    CAP_WINDOW,
    DevicePrefs,
    Fate,
    decide,
    in_quiet_hours,
    is_capped,
)

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0

# Why a planned device was not sent: its token was pruned (by another alert) or the device was
# forgotten (unsubscribed entirely) after the alert was planned.
ALREADY_PRUNED = "already_pruned"
DEVICE_GONE = "device_gone"


@dataclass
class BatchResult:
    """What happened to a batch in one run; ``retry_in`` asks the caller to run it again later."""

    batch_id: int
    # "done" | "retry" | "skipped" | "cancelled" | "expired" | "lease_lost" | "not_due" |
    # "deferred" (given back unsent to wait for its app's quota: notifier.pipeline.defer)
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    retry_in: float | None = None
    rate_wait: float = 0.0


# On PostgreSQL, a batch's device ids travel as one array parameter (``= ANY(:ids)``, ``unnest``):
# the statement's text is the same for every batch, so SQLAlchemy and psycopg compile it once and
# PostgreSQL prepares it, where an ``IN`` list or a ``VALUES`` list of 500 renders, parses and
# plans a new statement of a thousand parameters each time (about a sixth of a worker's CPU).
_ACCEPT_PG = text(
    "UPDATE deliveries SET status = :sent, updated_at = :now, attempts = attempts + 1, "
    # Each row's own name, found by its position: no join, so no join order for statistics
    # taken before the fan-out to get wrong (a nested loop over the 500 names per row did).
    "message_name = (CAST(:names AS text[]))[array_position(CAST(:ids AS bigint[]), device_id)] "
    "WHERE batch_id = :batch_id AND device_id = ANY(CAST(:ids AS bigint[])) "
    "AND status = :pending"
)


def _int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of integers (``{1,2,3}``), for a ``CAST(... AS bigint[])``.

    One string built in C: psycopg dumps a Python list element by element in Python, which for a
    batch's 500 ids and 500 message names cost about a millisecond of the worker's CPU.
    """
    return "{" + ",".join(map(str, values)) + "}"


def _text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings (``{"a","b"}``), each quoted and escaped."""
    return "{" + ",".join(_quoted(value) for value in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plan_per_execution(session: Session) -> None:
    """Have PostgreSQL plan this transaction's statements for their actual values.

    psycopg prepares a statement run five times; PostgreSQL may then reuse a generic plan built
    on the table's statistics. Those of ``deliveries`` are stale during a fan-out (the table
    grows by the whole audience within minutes of the last ANALYZE), and a generic plan built on
    them read far more than the batch's 500 rows: the accepted devices' UPDATE cost about 60 µs
    of PostgreSQL CPU per device prepared against 13 µs planned each time (docs/performance.md).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def among(
    session: Session, column_: SQLColumnExpression[int], ids: Sequence[int]
) -> ColumnElement[bool]:
    """SQL: ``column_`` is one of ``ids``; one array parameter on PostgreSQL, ``IN`` elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return column_ == any_(cast(list(ids), ARRAY(BigInteger)))
    return column_.in_(list(ids))


# Locks. Every transaction that locks an alert and its batches takes the alert first: one lock
# order, so leasing, recording and cancelling never deadlock.


def alert_of(session: Session, batch_id: int) -> str | None:
    """The batch's alert id (never changes, so it is read without a lock)."""
    return session.scalar(select(Batch.alert_id).where(Batch.id == batch_id))


# Read through the batch (one round trip where the batch's alert id, then the alert, took two),
# and built once with the batch id as a parameter: building them per batch cost more CPU than
# running them.
_ALERT_OF_BATCH = select(Alert).where(
    Alert.id == select(Batch.alert_id).where(Batch.id == bindparam("batch_id")).scalar_subquery()
)
_ALERT_LOCKED = _ALERT_OF_BATCH.with_for_update()
_ALERT_SHARED = _ALERT_OF_BATCH.with_for_update(read=True)
_BATCH_LOCKED = select(Batch).where(Batch.id == bindparam("batch_id")).with_for_update()


def lock_alert_of(session: Session, batch_id: int, *, shared: bool = False) -> Alert | None:
    """The batch's alert, locked (``shared``: for share, as a lease takes it); None if there is
    no such batch (or its alert was deleted)."""
    return session.scalar(_ALERT_SHARED if shared else _ALERT_LOCKED, {"batch_id": batch_id})


def lock_batch(session: Session, batch_id: int) -> Batch | None:
    """The batch, locked for update (after its alert: the one lock order)."""
    return session.scalar(_BATCH_LOCKED, {"batch_id": batch_id})


def owned_batch(session: Session, batch_id: int, owner: str) -> tuple[Alert, Batch] | None:
    """The alert and the batch, locked in that order, if ``owner`` still holds the lease."""
    alert = lock_alert_of(session, batch_id)
    if alert is None:
        return None
    batch = lock_batch(session, batch_id)
    if batch is None or batch.lease_owner != owner or batch.status != BatchStatus.SENDING:
        return None
    return alert, batch


# Classify.


@dataclass(frozen=True, slots=True)
class Classified:
    """A batch's outcomes sorted by what recording does with them.

    ``ended`` maps ``(status, code)`` (status ``pruned`` or ``failed``, code FCM's) to the device
    ids in the order FCM answered, so each group is one statement.
    """

    accepted: list[Accepted]
    ended: dict[tuple[DeliveryStatus, str], list[int]]
    retries: list[Retry]


def classify(outcomes: Iterable[Outcome]) -> Classified:
    """Sort outcomes into accepted, ended for good (pruned or failed, by code) and retryable."""
    accepted: list[Accepted] = []
    ended: dict[tuple[DeliveryStatus, str], list[int]] = defaultdict(list)
    retries: list[Retry] = []
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            accepted.append(outcome)
        elif isinstance(outcome, Prune):
            ended[(DeliveryStatus.PRUNED, outcome.reason)].append(outcome.device_id)
        elif isinstance(outcome, Fatal):
            ended[(DeliveryStatus.FAILED, outcome.reason)].append(outcome.device_id)
        else:
            retries.append(outcome)
    return Classified(accepted, dict(ended), retries)


# Apply.


def apply_outcomes(
    session: Session,
    alert: Alert,
    batch_id: int,
    outcomes: Classified,
    now: datetime,
    *,
    silent: frozenset[int] = frozenset(),
) -> dict[str, int]:
    """Record accepted, pruned and failed devices; returns the deliveries moved per status.

    Accepted devices that were sent silently (quiet hours) add to the alert's ``silent``; devices
    that ended without reaching the reader give back their place under the daily cap.
    """
    counts: dict[str, int] = {
        DeliveryStatus.SENT: _accept(session, alert, batch_id, outcomes.accepted, now)
    }
    # The lease owner records its own batch's pending devices: every accepted one moved.
    quiet = sum(1 for o in outcomes.accepted if o.device_id in silent) if silent else 0
    alert.silent += quiet
    if quiet:
        counts["silent"] = quiet
    if outcomes.accepted:
        alert.first_send_at = alert.first_send_at or now
        alert.last_send_at = now
    for (status, code), device_ids in outcomes.ended.items():
        moved = move_pending(session, alert, device_ids, status, code, now)
        counts[status] = counts.get(status, 0) + moved
        if status == DeliveryStatus.PRUNED:
            _mark_dead(session, device_ids, code, now)
    release_cap(session, alert.id, [i for ids in outcomes.ended.values() for i in ids])
    return counts


def release_cap(session: Session, alert_id: str, device_ids: Sequence[int]) -> None:
    """Devices this alert never reached give their place under the daily cap back."""
    if device_ids:
        session.execute(
            delete(DeviceSend).where(
                DeviceSend.alert_id == alert_id, among(session, DeviceSend.device_id, device_ids)
            )
        )


def move_pending(
    session: Session,
    alert: Alert,
    device_ids: Sequence[int],
    status: DeliveryStatus,
    error_code: str | None,
    now: datetime,
    *,
    count: bool = True,
    batch_id: int | None = None,
) -> int:
    """Move pending deliveries to a terminal status and the alert's counter by the rows moved.

    Only rows still pending move, so a device recorded by someone else (a cancel, the sweeper)
    is never counted twice. ``count=False`` leaves the counting to the caller.

    ``batch_id`` (one of the alert's batches) selects the rows by the batch alone: with the
    alert's id in the condition as well, PostgreSQL's statistics (taken before a large fan-out
    filled the table) can make it AND the batch's 500 rows with the alert's whole audience read
    from the primary key, a cost that grows with the audience.
    """
    if not device_ids:
        return 0
    owner = Delivery.alert_id == alert.id if batch_id is None else Delivery.batch_id == batch_id
    result = session.execute(
        update(Delivery)
        .where(
            owner,
            among(session, Delivery.device_id, device_ids),
            Delivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=status, error_code=error_code, updated_at=now, attempts=Delivery.attempts + 1
        )
        .execution_options(synchronize_session=False)
    )
    moved: int = result.rowcount  # type: ignore[attr-defined]
    if count:
        count_settled(alert, status, moved)
    return moved


def _accept(
    session: Session, alert: Alert, batch_id: int, accepted: list[Accepted], now: datetime
) -> int:
    """Mark accepted devices sent, with FCM's message name; returns the rows moved.

    PostgreSQL does it in one UPDATE taking the ids and the names as two arrays, the same
    statement for every batch; SQLite (no column aliases on VALUES)
    moves the rows, then stores the names by primary key.
    """
    if not accepted:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        moved = move_pending(
            session, alert, [o.device_id for o in accepted], DeliveryStatus.SENT, None, now
        )
        session.execute(
            update(Delivery),
            [
                {"alert_id": alert.id, "device_id": o.device_id, "message_name": o.message_name}
                for o in accepted
            ],
        )
        return moved
    result = session.execute(
        _ACCEPT_PG,
        {
            "sent": DeliveryStatus.SENT.value,
            "pending": DeliveryStatus.PENDING.value,
            "now": now,
            "ids": _int_array([o.device_id for o in accepted]),
            "names": _text_array([o.message_name for o in accepted]),
            # The batch alone selects the rows (an index range of at most 500): with the alert's
            # id as well, statistics taken before the fan-out filled the table can make
            # PostgreSQL read the alert's whole audience to intersect it with the batch.
            "batch_id": batch_id,
        },
    )
    sent: int = result.rowcount  # type: ignore[attr-defined]
    alert.sent += sent
    return sent


def _mark_dead(session: Session, device_ids: list[int], reason: str, now: datetime) -> None:
    """A pruned token is dead for every alert: the planner and later leases skip it."""
    session.execute(
        update(Device)
        .where(among(session, Device.id, device_ids))
        .values(state=DeviceState.DEAD, dead_reason=reason, dead_at=now)
    )


# Schedule.


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than FCM's Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(0, attempt - 1)))
    return max(retry_after or 0.0, random.uniform(ceiling / 2, ceiling))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """When the batch's retryable devices go again (``delay`` seconds), or that they give up."""

    delay: float
    give_up: bool


def decide_retry(
    attempts: int,
    retries: Sequence[Retry],
    *,
    max_attempts: int,
    now: datetime,
    expires_at: datetime,
) -> RetryDecision:
    """Retry after the longest Retry-After asked (or the backoff), unless out of attempts or time.

    ``attempts`` is how many times the batch has been leased, this run included. A retry that
    could only happen at or after the alert's TTL gives up now: sending it late would be worse
    than not sending it, and the devices fail with a reason instead of hanging.
    """
    delay = backoff(attempts, max((r.retry_after or 0.0) for r in retries))
    retry_at = now + timedelta(seconds=delay)
    return RetryDecision(delay, attempts >= max_attempts or retry_at >= expires_at)


@dataclass(frozen=True, slots=True)
class Scheduled:
    """What :func:`schedule_retries` did: the retry delay, or the devices failed per code."""

    retry_in: float | None = None
    gave_up: dict[str, int] = field(default_factory=dict)


def schedule_retries(
    session: Session,
    alert: Alert,
    batch: Batch,
    retries: list[Retry],
    *,
    max_attempts: int,
    now: datetime,
) -> Scheduled:
    """Keep retryable devices pending for another attempt, or fail them when out of time."""
    if not retries:
        return Scheduled()
    decision = decide_retry(
        batch.attempts, retries, max_attempts=max_attempts, now=now, expires_at=alert.expires_at
    )
    if decision.give_up:
        # Failing them counts this attempt (move_pending adds it); adding it here too would
        # count the last attempt twice.
        return Scheduled(gave_up=_give_up(session, alert, retries, now))
    device_ids = [r.device_id for r in retries]
    session.execute(
        update(Delivery)
        .where(Delivery.alert_id == alert.id, among(session, Delivery.device_id, device_ids))
        .values(attempts=Delivery.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    batch.status, batch.lease_owner, batch.lease_expires_at = BatchStatus.RETRY_WAIT, None, None
    batch.next_attempt_at = now + timedelta(seconds=decision.delay)
    batch.enqueued_at = now
    log.info(
        "batch will retry",
        extra={
            "fields": {
                "batch_id": batch.id,
                "devices": len(device_ids),
                "in_seconds": round(decision.delay, 1),
            }
        },
    )
    return Scheduled(retry_in=decision.delay)


def _give_up(session: Session, alert: Alert, retries: list[Retry], now: datetime) -> dict[str, int]:
    """Fail retryable devices with ``<reason>:gave_up``; returns the rows moved per code."""
    by_code: dict[str, list[int]] = defaultdict(list)
    for r in retries:
        by_code[f"{r.reason}:gave_up"[:64]].append(r.device_id)
    release_cap(session, alert.id, [r.device_id for r in retries])
    return {
        code: move_pending(session, alert, device_ids, DeliveryStatus.FAILED, code, now)
        for code, device_ids in by_code.items()
    }


# Count.


def count_outcomes(
    tally: Tally,
    alert: Alert,
    counts: dict[str, int],
    outcomes: Classified,
    scheduled: Scheduled,
    now: datetime,
) -> None:
    """Metrics for one recorded batch: outcomes by FCM code, prunes, end-to-end latency."""
    tally.add("notifier_sends_total", counts.get("sent", 0), outcome="accepted", code="")
    tally.add("notifier_silent_sends_total", counts.get("silent", 0))
    for (status, code), device_ids in outcomes.ended.items():
        outcome = "pruned" if status == DeliveryStatus.PRUNED else "failed"
        tally.add("notifier_sends_total", len(device_ids), outcome=outcome, code=code)
        if status == DeliveryStatus.PRUNED:
            tally.add("notifier_tokens_pruned_total", len(device_ids), reason=code)
    for retry in outcomes.retries:
        tally.add("notifier_sends_total", outcome="retry", code=retry.reason)
    for code, moved in scheduled.gave_up.items():
        tally.add("notifier_sends_total", moved, outcome="failed", code=code.split(":")[0])
    if counts.get("sent") and alert.event_received_at is not None:
        latency = (now - alert.event_received_at).total_seconds()
        tally.observe(
            "notifier_delivery_latency_seconds", [latency], DELIVERY_LATENCY_BUCKETS, counts["sent"]
        )


# The recording transactions.


def record_outcomes(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    outcomes: Sequence[Outcome],
    *,
    max_attempts: int,
    tally: Tally,
    now: datetime,
    verdicts: Verdicts | None = None,
) -> BatchResult:
    """Record what FCM answered for a batch, if ``owner`` still holds its lease, and the
    devices readers' preferences held back (``verdicts``, decided when it was leased)."""
    verdicts = verdicts or Verdicts()
    with sessions.begin() as session:
        owned = owned_batch(session, batch_id, owner)
        if owned is None:
            return BatchResult(batch_id, "lease_lost")
        plan_per_execution(session)
        alert, batch = owned
        classified = classify(outcomes)
        suppressed = record_suppressed(
            session, alert, batch.id, verdicts, tally, now, retried=batch.attempts > 1
        )
        counts = apply_outcomes(session, alert, batch.id, classified, now, silent=verdicts.silent)
        if suppressed:
            counts["suppressed"] = suppressed
        result = BatchResult(batch_id, "done", counts)
        scheduled = schedule_retries(
            session, alert, batch, classified.retries, max_attempts=max_attempts, now=now
        )
        if scheduled.gave_up:  # failed too: the batch's counts and the per-minute chart say so
            gave_up = sum(scheduled.gave_up.values())
            counts[DeliveryStatus.FAILED] = counts.get(DeliveryStatus.FAILED, 0) + gave_up
        count_outcomes(tally, alert, counts, classified, scheduled, now)
        tally.flush(session)
        retried = len(classified.retries) if scheduled.retry_in else 0
        add_minute(session, now, {**counts, "retried": retried})
        if scheduled.retry_in is None:
            batch.status, batch.finished_at, batch.lease_owner = BatchStatus.DONE, now, None
        else:
            result.state, result.retry_in = "retry", scheduled.retry_in
            counts["retry"] = len(classified.retries)
        _end_alert_if_due(session, alert, now)
    return result


def record_gone(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    *,
    dead: list[int],
    missing: list[int],
    now: datetime,
) -> None:
    """Record devices not sent because they died (``dead``) or were deleted since planning."""
    with sessions.begin() as session:
        owned = owned_batch(session, batch_id, owner)
        if owned is None:
            return
        plan_per_execution(session)
        alert, _batch = owned
        move_pending(session, alert, dead, DeliveryStatus.PRUNED, ALREADY_PRUNED, now)
        move_pending(session, alert, missing, DeliveryStatus.FAILED, DEVICE_GONE, now)


@dataclass(frozen=True, slots=True)
class Verdicts:
    """What readers' preferences decided for a batch's devices, recorded with its outcomes.

    ``suppressed`` maps a ``SuppressReason`` to the devices not sent for it; ``silent`` holds the
    devices sent silently (quiet hours).
    """

    suppressed: dict[str, list[int]] = field(default_factory=dict)
    silent: frozenset[int] = frozenset()


def decide_preferences(
    session: Session,
    alert_id: str,
    batch_id: int,
    devices: Sequence[DevicePrefs],
    *,
    urgency: Urgency,
    default_cap: int | None,
    now: datetime,
) -> Verdicts:
    """Decide each device's fate by its reader's preferences, in the lease's transaction.

    Nothing is read or written unless some device has quiet hours in effect or a cap, so the
    common batch costs nothing more. The suppressed devices stay pending until the outcomes are
    recorded (:func:`record_outcomes` moves them with the rest, in the transaction that holds
    the alert exclusively), so the counts add up at every commit.

    The daily cap holds across workers because the database arbitrates: the capped devices' rows
    are locked (``SELECT ... FOR UPDATE`` in id order, after the alert and the batch: the one lock
    order; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), then their sends of the last
    24 hours are counted and this alert's own are inserted, in one transaction. Two alerts fanning
    out at once to a device with one place left therefore take turns, and the second finds the
    place taken. A device retried or re-leased keeps its place (one row per device and alert;
    this alert's own row is not counted).
    """
    capped = sorted(d.device_id for d in devices if is_capped(d, urgency, default_cap))
    if not capped and not any(in_quiet_hours(d, now) for d in devices):
        return Verdicts()
    plan_per_execution(session)
    recent: dict[int, int] = {}
    if capped:
        session.execute(
            select(Device.id)
            .where(among(session, Device.id, capped))
            .order_by(Device.id)
            .with_for_update()
        )
        recent = dict(
            session.execute(
                select(DeviceSend.device_id, func.count())
                .where(
                    among(session, DeviceSend.device_id, capped),
                    DeviceSend.sent_at > now - CAP_WINDOW,
                    DeviceSend.alert_id != alert_id,
                )
                .group_by(DeviceSend.device_id)
            ).all()
        )
    suppressed: dict[str, list[int]] = defaultdict(list)
    silent: list[int] = []
    counted: list[int] = []
    for device in devices:
        decision = decide(
            device,
            urgency,
            now,
            sends_in_window=recent.get(device.device_id, 0),
            default_cap=default_cap,
        )
        if decision.fate == Fate.SUPPRESS and decision.reason is not None:
            suppressed[decision.reason].append(device.device_id)
            continue
        if decision.fate == Fate.SILENT:
            silent.append(device.device_id)
        if decision.counts_against_cap:
            counted.append(device.device_id)
    insert_ignoring_conflicts(
        session,
        DeviceSend.__table__,
        [{"device_id": i, "alert_id": alert_id, "sent_at": now} for i in counted],
    )
    if silent:
        # Kept on the device's delivery: what happened to it, and why, stays on record.
        session.execute(
            update(Delivery)
            .where(Delivery.batch_id == batch_id, among(session, Delivery.device_id, silent))
            .values(silent=True)
            .execution_options(synchronize_session=False)
        )
    return Verdicts(dict(suppressed), frozenset(silent))


def record_suppressed(
    session: Session,
    alert: Alert,
    batch_id: int,
    verdicts: Verdicts,
    tally: Tally,
    now: datetime,
    *,
    retried: bool = True,
) -> int:
    """Move the suppressed devices (still pending) to ``suppressed``; returns how many moved.

    On a batch's later attempts (``retried``) a device may have been counted against its cap by
    an earlier one: its place is given back.
    """
    total = 0
    for reason, device_ids in sorted(verdicts.suppressed.items()):
        moved = move_pending(
            session,
            alert,
            device_ids,
            DeliveryStatus.SUPPRESSED,
            reason,
            now,
            count=False,
            batch_id=batch_id,
        )
        count_suppressed(alert, reason, moved)
        if retried:
            release_cap(session, alert.id, device_ids)
        tally.add("notifier_suppressed_total", moved, reason=reason)
        total += moved
    return total


def _end_alert_if_due(session: Session, alert: Alert, now: datetime) -> None:
    """Expire the alert once past its TTL, else finish it if this batch was its last pending."""
    if alert.expires_at <= now:
        expire_alert(session, alert, now)
    else:
        finish_if_complete(session, alert, now)
