"""Sending one batch: lease it, send its pending devices, then record every outcome.

Idempotent by construction, because Celery delivers at least once:
- a batch already finished is not sent again when its message is redelivered;
- a batch is leased (owner + expiry) before sending, so a duplicate message finds it taken; a
  lease that expires (the worker died) can be taken over, which is the only way a device is sent
  twice, and that duplicate collapses on the device (collapse key = the alert);
- outcomes are recorded only by the lease owner, and only onto deliveries still pending, and the
  counters move by exactly the rows changed, so the counts always add up (see
  :mod:`notifier.pipeline.record`, which classifies, applies and schedules retries).

No transaction is open while FCM is being called: the lease and the recording are each their own.

Readers' preferences are decided here, at send time, between the lease and the send: the text in
the device's language, quiet hours in its zone (sent silently, or suppressed), and the daily cap
(see :mod:`notifier.pipeline.preferences` for the rules, and
:func:`notifier.pipeline.record.decide_preferences` for how the cap holds across workers).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Final, Protocol, cast

from sqlalchemy import String, Table, bindparam, or_, select, type_coerce, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.cap_places import release_unsent_places
from notifier.alerts.service import count_settled, to_push_alert
from notifier.core.counters import FCM_LATENCY_BUCKETS, Tally
from notifier.core.models import Alert, Batch, Delivery, Device, utcnow
from notifier.core.vocabulary import (
    FINISHED_BATCH_STATUSES,
    LIVE_ALERT_STATUSES,
    BatchStatus,
    DeliveryStatus,
    DeviceState,
)
from notifier.fcm.types import Localized, Outcome, Platform, PushAlert, Target
from notifier.pipeline.defer import defer_unleased, give_back
from notifier.pipeline.preferences import DevicePrefs, best_text
from notifier.pipeline.quota import Deferred, SendLimiter
from notifier.pipeline.record import (
    BatchResult,
    Verdicts,
    decide_preferences,
    lock_alert_of,
    lock_batch,
    record_gone,
    record_outcomes,
)

__all__ = ["BatchResult", "Sender", "send_batch"]

log = logging.getLogger(__name__)


class Sender(Protocol):
    """The FCM seam: one typed outcome per target, in order (``FcmSender`` in production)."""

    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]: ...


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
    default_locale: str = "en",
    default_max_per_day: int | None = None,
    sender_for: Callable[[str], Sender] | None = None,
    limiter_for: Callable[[str], SendLimiter] | None = None,
    max_wait: float | None = None,
) -> BatchResult:
    """Send batch ``batch_id`` once: lease it, send its pending devices, record the outcomes.

    ``clock`` gives the current UTC time (leases, retry times, the TTL and quiet hours are judged
    by it); tests pass a controllable one. ``default_locale`` is the language of a device that
    reports none, ``default_max_per_day`` the cap of a reader who chose none. With several apps,
    ``sender_for`` and ``limiter_for`` give the batch's app its own sender (credentials, OAuth
    token, connection pool) and quota bucket, in place of ``sender`` and ``limiter``.

    ``max_wait`` (seconds; with several apps) bounds how long the batch waits for its app's
    tokens in this task: a first chunk whose tokens are further away gives the lease back unsent
    and returns ``deferred`` with ``retry_in`` (see :mod:`notifier.pipeline.defer`), freeing the
    slot for the other apps' batches. Once a chunk went out, the batch finishes as it began.
    None waits whatever it takes.
    """
    if max_wait is not None:
        deferred = defer_unleased(
            sessions,
            batch_id,
            limiter_of=limiter_for or (lambda _app: limiter),
            max_wait=max_wait,
            now=clock(),
        )
        if deferred is not None:
            return deferred
    owner = str(uuid.uuid4())
    leased_at = clock()
    leased = _lease(
        sessions,
        batch_id,
        owner,
        lease_seconds,
        public_url,
        clock,
        default_locale=default_locale,
        default_max_per_day=default_max_per_day,
    )
    if isinstance(leased, BatchResult):
        return leased
    push_alert, targets, verdicts, app = leased
    if sender_for is not None:
        sender = sender_for(app)
    if limiter_for is not None:
        limiter = limiter_for(app)
    tally = Tally()
    outcomes: list[Outcome] = []
    latencies: list[float] = []
    for start in range(0, len(targets), limiter.max_chunk):
        chunk = targets[start : start + limiter.max_chunk]
        if start == 0 and max_wait is not None:
            granted = limiter.acquire_within(len(chunk), max_wait)
            if isinstance(granted, Deferred):
                tally.add("notifier_app_quota_deferrals_total", app=app)
                return give_back(
                    sessions, batch_id, owner, wait=granted.wait, now=clock(), tally=tally
                )
            waited = granted
        else:
            waited = limiter.acquire(len(chunk))
        if waited > 0:
            tally.add("notifier_rate_limit_waits_total")
            tally.add("notifier_rate_limit_wait_seconds_total", waited)
            tally.add("notifier_app_quota_wait_seconds_total", waited, app=app)
        outcomes.extend(sender.send_batch(push_alert, chunk, latencies=latencies))
    # Per app, what FCM answered each attempt: one app's outage or quota shows on its own.
    # Counted per kind first: one label string per kind, not one per device.
    for kind, count in Counter(outcome.kind for outcome in outcomes).items():
        tally.add("notifier_app_sends_total", count, app=app, outcome=kind)
    tally.observe("notifier_fcm_request_seconds", latencies, FCM_LATENCY_BUCKETS)

    def record() -> BatchResult:
        # A copy each attempt: increments of an attempt that rolled back must not count twice.
        return record_outcomes(
            sessions,
            batch_id,
            owner,
            outcomes,
            max_attempts=max_attempts,
            tally=copy.deepcopy(tally),
            now=clock(),
            verdicts=verdicts,
        )

    until = leased_at + max(timedelta(seconds=lease_seconds), RECORD_RETRY_AT_LEAST)
    return record_while_leased(record, until=until, clock=clock)


# Waits between attempts to record a batch while the database cannot be reached, and how long
# at least to keep trying (a restart or a fail-over takes seconds to a minute).
RECORD_RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)
RECORD_RETRY_AT_LEAST = timedelta(seconds=60)


def record_while_leased(
    record: Callable[[], BatchResult],
    *,
    until: datetime,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
) -> BatchResult:
    """Record FCM's answers, retrying while PostgreSQL is unreachable and the lease still holds.

    The sends have gone out: if the recording is lost, the batch waits for its lease to expire
    and the sweeper sends it again, so every device of it is sent twice (fault 10). The owner is
    unchanged, and recording only touches deliveries still pending, so an attempt whose commit
    did land before the connection dropped makes the next one find nothing left to do. Trying
    past the lease is safe too: recording checks the owner, so a batch another worker took over
    in the meantime is left to it (``lease_lost``).
    """
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            return record()
        except (OperationalError, InterfaceError):
            if delay is None or clock() + timedelta(seconds=delay) > until:
                raise
            log.warning(
                "database unreachable while recording a sent batch; retrying",
                extra={"fields": {"retry_in_s": delay}},
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _lease(
    sessions: sessionmaker[Session],
    batch_id: int,
    owner: str,
    lease_seconds: int,
    public_url: str | None,
    clock: Callable[[], datetime],
    *,
    default_locale: str,
    default_max_per_day: int | None,
) -> BatchResult | tuple[PushAlert, list[Target], Verdicts, str]:
    """Take the batch's lease and read its pending devices, or say why this run must not send.

    Devices pruned or forgotten since planning are recorded here, in a transaction of their own
    once the lease is held, so the sender is only given live tokens. The readers' preferences
    decide each live device's fate in the lease's own transaction (see
    :func:`notifier.pipeline.record.decide_preferences`), and each target gets its text in its
    language.
    """
    now = clock()
    with sessions.begin() as session:
        # Every transaction that locks an alert and its batches takes the alert first (shared
        # here, so many batches lease at once; cancel and record take it exclusively): one lock
        # order, so they never deadlock. Found through the batch in the same statement.
        alert = lock_alert_of(session, batch_id, shared=True)
        if alert is None:
            # No such batch, or its alert deleted (the code never deletes alerts, an operator
            # may; the batches go with their alert): nothing is left to send.
            return BatchResult(batch_id, "skipped")
        leased_app = _take_lease(session, alert, batch_id, owner, now, lease_seconds)
        verdict = None
        if leased_app is None:
            # Not leased: say why (done, leased by another, not due, stopped). Rare: a
            # duplicate message, an early retry, a cancelled or expired alert.
            batch = session.execute(
                select(Batch.id, Batch.status, Batch.lease_expires_at, Batch.next_attempt_at).where(
                    Batch.id == batch_id
                )
            ).one_or_none()
            verdict = BatchResult(batch_id, "skipped")
            if batch is not None:
                verdict = _not_to_send(alert, batch, now) or verdict
        else:
            app = leased_app
            rows = session.execute(_PENDING_DEVICES, {"batch_id": batch_id}).all()
            push_alert = to_push_alert(alert, public_url)
            alert_locale = alert.locale or default_locale
            translations = dict(alert.translations or {})
            live = [row for row in rows if row[_STATE] == DeviceState.ACTIVE]
            dead: list[int] = []
            missing: list[int] = []
            if len(live) < len(rows):  # pruned or unsubscribed since planning (rare)
                dead = [
                    row[_DEVICE_ID]
                    for row in rows
                    if row[_STATE] is not None and row[_STATE] != DeviceState.ACTIVE
                ]
                missing = [row[_DEVICE_ID] for row in rows if row[_STATE] is None]
            # Without a default cap, a device with neither quiet hours nor a cap of its own is
            # simply sent: only the others are handed to the rules (most batches: none).
            minded = (
                live
                if default_max_per_day is not None
                else [r for r in live if r[_QUIET_START] is not None or r[_MAX_PER_DAY] is not None]
            )
            verdicts = decide_preferences(
                session,
                alert.id,
                batch_id,
                [
                    DevicePrefs(
                        r.device_id,
                        r.locale,
                        r.timezone,
                        r.quiet_start,
                        r.quiet_end,
                        r.quiet_mode,
                        r.max_per_day,
                        r.urgent_overrides,
                    )
                    for r in minded
                ],
                urgency=alert.urgency,
                default_cap=default_max_per_day,
                now=now,
            )
    if verdict is not None:
        if verdict.state == "cancelled":
            _close_batch(sessions, batch_id, now)
        return verdict
    if dead or missing:
        # Pruned by another alert (or unsubscribed) since planning: recorded, not sent.
        record_gone(sessions, batch_id, owner, dead=dead, missing=missing, now=clock())
    held_back = {i for ids in verdicts.suppressed.values() for i in ids}
    text_for = _texts(push_alert, alert_locale, translations, default_locale)
    silent = verdicts.silent
    # Each row unpacked as the plain tuple it is: no attribute lookup per column and device.
    targets = [
        Target(device_id, token, _PLATFORMS[platform], text_for(locale), device_id in silent)
        for device_id, token, platform, _state, locale, _tz, _qs, _qe, _qm, _cap, _urgent in live
        if device_id not in held_back
    ]
    return push_alert, targets, verdicts, app


def _take_lease(
    session: Session, alert: Alert, batch_id: int, owner: str, now: datetime, lease_seconds: int
) -> str | None:
    """Lease the batch to ``owner`` if it may be sent now; returns its app, or None if not.

    One UPDATE whose condition is :func:`_not_to_send`'s for the batch (not finished, not leased
    by someone else, due), the alert's half judged here from the row already read: the batch's
    row is locked, changed and read back in one statement, with no ORM object to load or flush.
    """
    if alert.status not in LIVE_ALERT_STATUSES or alert.expires_at <= now:
        return None
    leased: str | None = session.scalar(
        _LEASE,
        {
            "batch_id": batch_id,
            "now": now,
            "owner": owner,
            "expires": now + timedelta(seconds=lease_seconds),
        },
    )
    return leased


# The hot statements are built once, with named parameters: building one per batch (clauses,
# coercions, its cache key) cost more CPU than running it. Core statements on the tables, not
# ORM ones: nothing here needs the session's identity map.
_BATCHES = cast(Table, Batch.__table__)
_batches = _BATCHES.c

# Leases a batch that may be sent now; returns its app (:func:`_take_lease`).
_LEASE = (
    update(_BATCHES)
    .where(
        _batches.id == bindparam("batch_id"),
        _batches.status.not_in(FINISHED_BATCH_STATUSES),
        or_(
            _batches.status != BatchStatus.SENDING,
            _batches.lease_expires_at.is_(None),
            _batches.lease_expires_at <= bindparam("now"),
        ),
        or_(
            _batches.status != BatchStatus.RETRY_WAIT,
            _batches.next_attempt_at.is_(None),
            _batches.next_attempt_at <= bindparam("now"),
        ),
    )
    .values(
        status=BatchStatus.SENDING,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires"),
        attempts=_batches.attempts + 1,
    )
    .returning(_batches.app)
)

# The batch's pending devices, one row each.
_PENDING_DEVICES = (
    select(
        Delivery.device_id,
        Device.token,
        # As their stored strings: mapped to the enums through a dict, cheaper per row than the
        # column type's conversion.
        type_coerce(Device.platform, String).label("platform"),
        type_coerce(Device.state, String).label("state"),
        Device.locale,
        Device.timezone,
        Device.quiet_start,
        Device.quiet_end,
        Device.quiet_mode,
        Device.max_per_day,
        Device.urgent_overrides,
    )
    # Outer join: a device that unsubscribed entirely since planning has no row.
    .outerjoin(Device, Device.id == Delivery.device_id)
    .where(Delivery.batch_id == bindparam("batch_id"), Delivery.status == DeliveryStatus.PENDING)
    .order_by(Delivery.device_id)
)

# Positions of ``_PENDING_DEVICES``'s columns: its rows are read by index in the per-device
# loops, cheaper than by name (an attribute lookup per row and column).
_DEVICE_ID: Final = 0
_STATE: Final = 3
_QUIET_START: Final = 6
_MAX_PER_DAY: Final = 9


# A stored platform string to its enum member (a dict lookup per device).
_PLATFORMS: dict[str, Platform] = {platform.value: platform for platform in Platform}


def _texts(
    push_alert: PushAlert,
    alert_locale: str,
    translations: dict[str, dict[str, str]],
    default_locale: str,
) -> Callable[[str | None], Localized | None]:
    """A device locale's text: None for the alert's own, else the translation (one per locale,
    so a batch's messages come in a handful of variants the sender encodes once each)."""
    cache: dict[str | None, Localized | None] = {}

    def text_for(locale: str | None) -> Localized | None:
        if locale not in cache:
            text = best_text(
                locale,
                alert_locale=alert_locale,
                headline=push_alert.headline,
                body=push_alert.body,
                url=push_alert.url,
                translations=translations,
                default_locale=default_locale,
            )
            own = (text.headline, text.body, text.url) == (
                push_alert.headline,
                push_alert.body,
                push_alert.url,
            )
            cache[locale] = (
                None if own else Localized(text.locale, text.headline, text.body, text.url)
            )
        return cache[locale]

    return text_for


def _close_batch(sessions: sessionmaker[Session], batch_id: int, now: datetime) -> None:
    """A batch of an alert that was cancelled or finished: its pending devices are cancelled.

    Its own transaction, with the alert locked exclusively before the batch (it changes the
    alert's counters), keeps the one lock order.
    """
    with sessions.begin() as session:
        alert = lock_alert_of(session, batch_id)
        if alert is None:
            return
        batch = lock_batch(session, batch_id)
        if batch is None or batch.status in FINISHED_BATCH_STATUSES:
            return
        # Its devices may hold daily-cap places from an attempt before the alert stopped.
        release_unsent_places(session, alert.id, [batch.id])
        result = session.execute(
            update(Delivery)
            .where(Delivery.batch_id == batch.id, Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.CANCELLED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        count_settled(alert, DeliveryStatus.CANCELLED, result.rowcount)  # type: ignore[attr-defined]
        batch.status, batch.finished_at = BatchStatus.CANCELLED, now


class _BatchState(Protocol):
    """The columns of a batch that say whether it may be leased now."""

    id: int
    status: str
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None


def _not_to_send(alert: Alert, batch: _BatchState, now: datetime) -> BatchResult | None:
    """Why this run must not send the batch (done, leased, not due, stopped), or None."""
    if batch.status in FINISHED_BATCH_STATUSES:
        return BatchResult(batch.id, "skipped")
    if (
        batch.status == BatchStatus.SENDING
        and batch.lease_expires_at
        and batch.lease_expires_at > now
    ):
        return BatchResult(batch.id, "skipped")  # a duplicate message; the owner is on it
    if (
        batch.status == BatchStatus.RETRY_WAIT
        and batch.next_attempt_at
        and batch.next_attempt_at > now
    ):
        return BatchResult(
            batch.id, "not_due", retry_in=(batch.next_attempt_at - now).total_seconds()
        )
    if alert.status not in LIVE_ALERT_STATUSES:
        return BatchResult(batch.id, "cancelled")  # closed in a transaction of its own
    if alert.expires_at <= now:
        return BatchResult(batch.id, "expired")  # the sweeper expires the alert and its devices
    return None
