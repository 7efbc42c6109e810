"""Planning an alert's audience: keyset pages of subscribed devices become batches.

Each page is one transaction: it records a batch (an id range) and one pending delivery per
device, advances the alert's cursor and grows its audience. The work per page is constant
whatever the audience size: every followed topic contributes at most one page of its
``(topic_id, device_id)`` index range, and the union of those is de-duplicated, so a device that
follows several of the alert's topics is planned once. No list of all tokens is ever in memory.

An edition's alert (``locales``) keeps only the page's devices whose language matches, in the
same statement that keeps only live devices: a filter on at most ``PAGE_SIZE`` rows found by
primary key, so the page still costs the same. The other preferences (quiet hours, the daily
cap, the text's language) are decided when a batch is sent, see ``notifier.pipeline.send``.

Several apps: an alert restricted to some apps (``apps``) keeps only their devices, in the same
filter. One keyset cursor still walks the device ids whatever the apps, and each page becomes one
batch per app present in it, the batch carrying its app: a batch is sent with one app's
credentials and quota, so an outage or a quota in one app never holds up another's devices.

On PostgreSQL all of a page after the alert's checks is one data-modifying statement
(:mod:`notifier.pipeline.page_sql`); SQLite, which has no ``INSERT`` in a ``WITH``, runs the
portable statements of :func:`_plan_page`. Both plan the same pages, batches and cursor
(tests/test_planner_one_statement.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, false, func, insert, or_, select, text, union_all
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.lifecycle import expire_alert, finish_if_complete
from notifier.alerts.service import get_alert
from notifier.core.models import (
    Alert,
    Batch,
    Delivery,
    Device,
    Subscription,
    TestDevice,
    Topic,
    utcnow,
)
from notifier.core.outbox import add_trigger
from notifier.core.vocabulary import (
    LIVE_ALERT_STATUSES,
    AlertStatus,
    BatchStatus,
    DeliveryStatus,
    DeviceState,
    TriggerKind,
)
from notifier.pipeline.page_sql import plan_page_in_one_statement
from notifier.pipeline.preferences import language
from notifier.pipeline.record import among

PAGE_SIZE = 500


class PlanState(StrEnum):
    """How one run of the planner left the alert."""

    PLANNED = "planned"  # the whole audience is in batches
    CONTINUE = "continue"  # out of time or pages; a continuation trigger carries on
    NOT_DUE = "not_due"  # still in its hold window (an early or duplicate trigger)
    STOPPED = "stopped"  # cancelled, expired or finished meanwhile


@dataclass
class PlanSlice:
    """What one run of the planner did; ``batch_ids`` are to be published after the commits."""

    alert_id: str
    state: PlanState
    batch_ids: list[int] = field(default_factory=list)
    devices: int = 0
    continuation_trigger: int | None = None


def page_of_audience(session: Session, topic_ids: list[int], after: int) -> list[int]:
    """The next ``PAGE_SIZE`` distinct subscribed device ids above ``after``, ascending."""
    if not topic_ids:
        return []
    per_topic = [
        select(Subscription.device_id)
        .where(Subscription.topic_id == topic_id, Subscription.device_id > after)
        .order_by(Subscription.device_id)
        .limit(PAGE_SIZE)
        .subquery()
        for topic_id in topic_ids
    ]
    merged = union_all(*(select(sq.c.device_id) for sq in per_topic)).subquery()
    query = select(merged.c.device_id).distinct().order_by(merged.c.device_id).limit(PAGE_SIZE)
    return list(session.scalars(query))


def plan_slice(
    sessions: sessionmaker[Session],
    alert_id: str,
    *,
    time_budget: float = 20.0,
    max_pages: int = 200,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
    default_locale: str = "en",
) -> PlanSlice:
    """Plan pages until the audience is exhausted or the budget is spent.

    When the budget runs out, a continuation trigger is written in the last page's transaction,
    so a lost continuation is found by the sweeper like any other trigger. ``on_batch`` (a
    callable taking a batch id) is called after each page commits, so sending starts while the
    planner is still paging. A device without a locale counts as ``default_locale``.
    """
    started = time.monotonic()
    result = PlanSlice(alert_id=alert_id, state=PlanState.CONTINUE)
    for _ in range(max_pages):
        with sessions.begin() as session:
            step = _plan_page(session, alert_id, now or utcnow(), default_locale)
            if step is None:
                result.state = _final_state(session, alert_id)
                return result
            batch_ids, size = step
            budget_spent = time.monotonic() - started > time_budget
            if budget_spent:
                result.continuation_trigger = add_trigger(session, TriggerKind.PLAN, alert_id).id
        result.batch_ids.extend(batch_ids)
        result.devices += size
        for batch_id in batch_ids:
            if on_batch is not None:
                on_batch(batch_id)
        if budget_spent:
            return result
    with sessions.begin() as session:
        result.continuation_trigger = add_trigger(session, TriggerKind.PLAN, alert_id).id
    return result


def _final_state(session: Session, alert_id: str) -> PlanState:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.status not in LIVE_ALERT_STATUSES:
        return PlanState.STOPPED
    return PlanState.PLANNED if alert.planned_at is not None else PlanState.NOT_DUE


def speaks_any(languages: list[str], default_locale: str) -> ColumnElement[bool]:
    """SQL: the device's locale is in one of ``languages`` (primary subtags, lowercase).

    ``fr`` matches ``fr``, ``fr-CA`` and ``fr_ca``; a device without a locale counts as
    ``default_locale``.
    """
    tag = func.lower(func.replace(Device.locale, "_", "-"))
    matches: list[ColumnElement[bool]] = []
    for lang in sorted({language(code, default_locale) for code in languages}):
        matches.append(tag == lang)
        matches.append(tag.startswith(f"{lang}-", autoescape=True))
    if language(None, default_locale) in {language(c, default_locale) for c in languages}:
        matches.append(Device.locale.is_(None))
    return or_(*matches) if matches else false()


# Pages of the audience read in one transaction, at most, when none of their devices is to be
# sent (dead, or another edition's readers): the cursor is committed and paging goes on in the
# next transaction, so an edition's alert over a large audience never holds one long transaction.
MAX_EMPTY_PAGES = 8


def _plan_page(
    session: Session,
    alert_id: str,
    now: datetime,
    default_locale: str = "en",
    *,
    one_statement: bool | None = None,
) -> tuple[list[int], int] | None:
    """Record one page as batches, one per app in it; ``None`` when there is nothing (more).

    ``([], 0)``: pages were read and none of their devices is in the audience (the cursor moved
    on, nothing was recorded).
    """
    alert = get_alert(session, alert_id, for_update=True)
    if alert.status not in LIVE_ALERT_STATUSES or alert.planned_at is not None:
        return None
    if alert.send_at > now + timedelta(seconds=0.5):
        return None  # still in its hold window (an early or duplicate trigger)
    if alert.expires_at <= now:
        expire_alert(session, alert, now)
        return None
    if alert.status == AlertStatus.SCHEDULED:
        alert.status, alert.planning_started_at = AlertStatus.SENDING, now
    alert.plan_progress_at = now
    if one_statement is None:
        one_statement = session.get_bind().dialect.name == "postgresql"
    if one_statement:
        with session.no_autoflush:  # the alert's changes go in one UPDATE, at the commit
            return _plan_in_one_statement(session, alert, now, default_locale)
    topic_ids = list(session.scalars(select(Topic.id).where(Topic.slug.in_(alert.topics))))
    audience_filter = [Device.state == DeviceState.ACTIVE]
    if alert.locales and not alert.test_only:
        audience_filter.append(speaks_any(list(alert.locales), default_locale))
    if alert.apps and not alert.test_only:
        audience_filter.append(Device.app.in_(list(alert.apps)))
    active: list[tuple[int, str]] = []
    for _ in range(MAX_EMPTY_PAGES):  # a page of only dead (or other editions') devices is skipped
        if alert.test_only:
            device_ids = _test_audience(session, alert, alert.plan_cursor)
        else:
            device_ids = page_of_audience(session, topic_ids, alert.plan_cursor)
        if not device_ids:
            alert.planned_at = now
            finish_if_complete(session, alert, now)
            return None
        active = [
            (device_id, app)
            for device_id, app in session.execute(
                select(Device.id, Device.app)
                .where(among(session, Device.id, device_ids), *audience_filter)
                .order_by(Device.id)
            )
        ]
        alert.plan_cursor = device_ids[-1]
        if active:
            break
    else:
        return [], 0
    by_app: dict[str, list[int]] = {}
    for device_id, app in active:
        by_app.setdefault(app, []).append(device_id)
    seq = session.scalar(select(func.max(Batch.seq)).where(Batch.alert_id == alert.id)) or 0
    batch_ids = []
    for app, ids in sorted(by_app.items()):
        seq += 1
        batch_ids.append(_record_batch(session, alert, app, seq, ids, now))
    alert.audience += len(active)
    return batch_ids, len(active)


def _plan_in_one_statement(
    session: Session, alert: Alert, now: datetime, default_locale: str
) -> tuple[list[int], int] | None:
    """The rest of :func:`_plan_page` on PostgreSQL: each page read and recorded in one statement.

    The same audience, batches and cursor as the portable statements below it in
    :func:`_plan_page` (tests/test_planner_one_statement.py plans the same alerts both ways).
    """
    languages, no_locale, apps = None, False, None
    if alert.locales and not alert.test_only:
        wanted = {language(code, default_locale) for code in alert.locales}
        languages, no_locale = sorted(wanted), language(None, default_locale) in wanted
    if alert.apps and not alert.test_only:
        apps = sorted(alert.apps)
    test_key = None
    if alert.test_only:
        editor = _test_key(alert)
        test_key = -1 if editor is None else editor  # -1: no key has it, no test devices
    for _ in range(MAX_EMPTY_PAGES):
        outcome = plan_page_in_one_statement(
            session,
            alert.id,
            alert.plan_cursor,
            now,
            page_size=PAGE_SIZE,
            slugs=list(alert.topics),
            test_key=test_key,
            languages=languages,
            no_locale=no_locale,
            apps=apps,
        )
        if outcome.last_device_id is None:
            alert.planned_at = now
            finish_if_complete(session, alert, now)
            return None
        alert.plan_cursor = outcome.last_device_id
        if outcome.batches:
            break
    else:
        return [], 0
    size = sum(devices for _, devices in outcome.batches)
    alert.audience += size
    return [batch_id for batch_id, _ in outcome.batches], size


def _record_batch(
    session: Session, alert: Alert, app: str, seq: int, device_ids: list[int], now: datetime
) -> int:
    """One batch of ``app``'s devices ``device_ids`` (ascending) and their pending deliveries."""
    batch = Batch(
        alert_id=alert.id,
        seq=seq,
        app=app,
        first_device_id=device_ids[0],
        last_device_id=device_ids[-1],
        size=len(device_ids),
        status=BatchStatus.PENDING,
        created_at=now,
        enqueued_at=now,
    )
    session.add(batch)
    session.flush()
    _add_pending(session, alert.id, batch.id, device_ids, now)
    return batch.id


# One statement text for every page: prepared once per connection, where a multi-row VALUES of
# 500 rows is rendered, parsed in Python and planned by PostgreSQL anew for each page.
_ADD_PENDING_PG = text(
    "INSERT INTO deliveries (alert_id, device_id, batch_id, status, silent, attempts, updated_at) "
    "SELECT :alert_id, device_id, :batch_id, :pending, false, 0, :now "
    "FROM unnest(CAST(:ids AS bigint[])) AS page(device_id)"
)


def _add_pending(
    session: Session, alert_id: str, batch_id: int, device_ids: list[int], now: datetime
) -> None:
    """One pending delivery per device of the batch (one array parameter on PostgreSQL).

    ``deliveries`` has no foreign key to ``alerts`` (migration 0006: it was checked per row):
    the caller holds the alert ``FOR UPDATE``, so it exists here and a ``DELETE`` of it (whose
    trigger deletes its deliveries) waits for this transaction. Any other writer of deliveries
    must take that lock too.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _ADD_PENDING_PG,
            {
                "alert_id": alert_id,
                "batch_id": batch_id,
                "pending": DeliveryStatus.PENDING.value,
                "now": now,
                "ids": device_ids,
            },
        )
        return
    session.execute(
        insert(Delivery),
        [
            {
                "alert_id": alert_id,
                "device_id": device_id,
                "batch_id": batch_id,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "updated_at": now,
            }
            for device_id in device_ids
        ],
    )


def _test_key(alert: Alert) -> int | None:
    """The id of the API key that made a test send (``created_by``), or None if there is none."""
    creator = alert.created_by
    return int(creator) if creator is not None and creator.isdigit() else None


def _test_audience(session: Session, alert: Alert, after: int) -> list[int]:
    """An editor's test send goes only to the test devices registered to the editor's key."""
    key = _test_key(alert)
    if key is None:
        return []
    return list(
        session.scalars(
            select(TestDevice.device_id)
            .where(TestDevice.api_key_id == key, TestDevice.device_id > after)
            .order_by(TestDevice.device_id)
            .limit(PAGE_SIZE)
        )
    )
