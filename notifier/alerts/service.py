"""Alerts: creating one (with its trigger in the same transaction), cancelling, and reporting it.

An alert's counters obey ``audience == sent + failed + pruned + cancelled + suppressed +
pending`` at every
commit: the planner adds to ``audience`` as it records devices, and every later change moves a
device from pending to exactly one terminal counter in the same transaction
(:func:`count_settled`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from notifier.alerts.cap_places import release_unsent_places, retry_waiting_batches
from notifier.alerts.opens import open_rate
from notifier.core.models import Alert, Batch, Delivery, Device, utcnow
from notifier.core.outbox import CoreWork, add_trigger
from notifier.core.vocabulary import (
    LIVE_ALERT_STATUSES,
    SETTLED_DELIVERY_STATUSES,
    WAITING_BATCH_STATUSES,
    AlertStatus,
    BatchStatus,
    DeliveryStatus,
    TriggerKind,
    Urgency,
)
from notifier.fcm.types import PushAlert


class AlertNotFound(LookupError):
    pass


class AlertNotCancellable(ValueError):
    """The alert already finished (sent, expired, failed, cancelled)."""


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """What an alert says and to whom, before it exists. ``None`` means "the configured default"."""

    headline: str
    url: str
    topics: tuple[str, ...]
    body: str | None = None
    image_url: str | None = None
    hold_seconds: int | None = None
    ttl_seconds: int | None = None
    priority: str = "high"
    article_id: str | None = None
    source: str = "webhook"
    created_by: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    event_received_at: datetime | None = None
    test_only: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    urgency: Urgency = Urgency.NORMAL
    # None: NOTIFIER_DEFAULT_LOCALE. Translations: {"fr": {"headline", "body"?, "url"?}}.
    locale: str | None = None
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    # Languages the audience is restricted to (an edition's alert); None: every reader.
    locales: tuple[str, ...] | None = None
    # Apps (notifier/core/apps.py) the audience is restricted to, checked by the caller; None:
    # every app.
    apps: tuple[str, ...] | None = None


def new_alert_id() -> str:
    return str(uuid.uuid4())


def create_alert(
    session: Session,
    draft: AlertDraft,
    *,
    default_hold: int,
    default_ttl: int,
    now: datetime | None = None,
    default_locale: str = "en",
) -> Alert:
    """Insert the alert and its "plan" trigger; the caller commits, then dispatches the outbox."""
    alert = Alert(
        **new_alert_values(
            draft,
            default_hold=default_hold,
            default_ttl=default_ttl,
            now=now or utcnow(),
            default_locale=default_locale,
        )
    )
    session.add(alert)
    session.flush()
    add_trigger(session, TriggerKind.PLAN, alert.id, due_at=alert.send_at)
    return alert


def create_alert_on(
    work: CoreWork,
    draft: AlertDraft,
    *,
    default_hold: int,
    default_ttl: int,
    now: datetime,
    default_locale: str = "en",
) -> Alert:
    """:func:`create_alert` on a Core connection: the same row and trigger, no Session.

    Returns the alert as a transient object (never added to a session) with every column set,
    as :func:`alert_view` and the caller read it; its trigger is published once ``work``
    commits.
    """
    values = {
        **_column_defaults(),
        **new_alert_values(
            draft,
            default_hold=default_hold,
            default_ttl=default_ttl,
            now=now,
            default_locale=default_locale,
        ),
    }
    work.connection.execute(_INSERT_ALERT, values)
    work.add_trigger(TriggerKind.PLAN, values["id"], due_at=values["send_at"])
    return Alert(**values)


def new_alert_values(
    draft: AlertDraft,
    *,
    default_hold: int,
    default_ttl: int,
    now: datetime,
    default_locale: str,
) -> dict[str, Any]:
    """A new alert's columns: the rules every way of creating one shares (hold, TTL, locale)."""
    hold = default_hold if draft.hold_seconds is None else draft.hold_seconds
    ttl = default_ttl if draft.ttl_seconds is None else draft.ttl_seconds
    send_at = now + timedelta(seconds=hold)
    return {
        "id": new_alert_id(),
        "article_id": draft.article_id,
        "headline": draft.headline,
        "body": draft.body,
        "url": draft.url,
        "image_url": draft.image_url,
        "topics": sorted(set(draft.topics)),
        "priority": draft.priority,
        "urgency": draft.urgency,
        "locale": draft.locale or default_locale,
        "translations": {tag: dict(text) for tag, text in draft.translations.items()},
        "locales": sorted({tag.lower() for tag in draft.locales}) if draft.locales else None,
        "apps": sorted(set(draft.apps)) if draft.apps else None,
        "suppressed": 0,
        "suppressed_quiet_hours": 0,
        "suppressed_daily_cap": 0,
        "silent": 0,
        "status": AlertStatus.SCHEDULED,
        "source": draft.source,
        "created_by": draft.created_by,
        "idempotency_key": draft.idempotency_key,
        "request_hash": draft.request_hash,
        "test_only": draft.test_only,
        "hold_seconds": hold,
        "ttl_seconds": ttl,
        "created_at": now,
        "event_received_at": draft.event_received_at or now,
        "send_at": send_at,
        # The TTL runs from the end of the hold: an undo window must not eat delivery time.
        "expires_at": send_at + timedelta(seconds=ttl),
    }


_alerts = cast(Table, Alert.__table__)
_INSERT_ALERT = insert(_alerts)


@functools.cache
def _column_defaults() -> dict[str, Any]:
    """The alerts table's constant column defaults (its counters' zeros), which an INSERT
    applies by itself but a transient object for :func:`alert_view` must be given."""
    return {
        column.key: column.default.arg
        for column in _alerts.columns
        if isinstance(column.default, ScalarElementColumnDefault)
    }


def get_alert(session: Session, alert_id: str, *, for_update: bool = False) -> Alert:
    query = select(Alert).where(Alert.id == alert_id)
    if for_update:
        query = query.with_for_update()
    alert = session.scalar(query)
    if alert is None:
        raise AlertNotFound(alert_id)
    return alert


def cancel_alert(session: Session, alert_id: str, *, now: datetime | None = None) -> Alert:
    """Stop an alert: nothing more is sent, except the batches already in FCM's hands."""
    now = now or utcnow()
    alert = get_alert(session, alert_id, for_update=True)
    if alert.status == AlertStatus.CANCELLED:
        return alert
    if alert.status not in LIVE_ALERT_STATUSES:
        raise AlertNotCancellable(f"alert is already {alert.status}")
    settle_pending(session, alert, DeliveryStatus.CANCELLED, None, now)
    alert.status, alert.cancelled_at, alert.finished_at = AlertStatus.CANCELLED, now, now
    session.flush()
    return alert


def count_settled(alert: Alert, status: DeliveryStatus, devices: int) -> None:
    """Add ``devices`` that just left pending to the alert's counter for ``status``.

    Each settled delivery status names its counter (``Alert.sent``, ``.failed``, ``.pruned``,
    ``.cancelled``, ``.suppressed``), which is what keeps the counts adding up without a table
    between the two. Suppressions' reasons are counted by :func:`count_suppressed`.
    """
    if status not in SETTLED_DELIVERY_STATUSES:
        raise ValueError(f"{status!r} is not a settled delivery status")
    setattr(alert, status.value, getattr(alert, status.value) + devices)


def count_suppressed(alert: Alert, reason: str, devices: int) -> None:
    """Add ``devices`` suppressed for ``reason`` (a ``SuppressReason``) to the alert's counters."""
    count_settled(alert, DeliveryStatus.SUPPRESSED, devices)
    column = f"suppressed_{reason}"
    setattr(alert, column, getattr(alert, column) + devices)


def settle_pending(
    session: Session,
    alert: Alert,
    status: DeliveryStatus,
    error_code: str | None,
    now: datetime,
) -> int:
    """End every pending device of the alert's batches that are not in flight; returns how many.

    The alert's counter for ``status`` grows by as many. A batch in flight (leased) is left to
    finish: it records what FCM answered, so the counts stay true. Batches still waiting are
    closed so no worker picks them up, and the daily-cap places their devices held while waiting
    for a retry are given back (they will never be sent this alert).
    """
    release_unsent_places(session, alert.id, retry_waiting_batches(alert.id))
    in_flight = select(Batch.id).where(
        Batch.alert_id == alert.id, Batch.status == BatchStatus.SENDING
    )
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.alert_id == alert.id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.batch_id.not_in(in_flight),
        )
        .values(status=status, error_code=error_code, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    closed = BatchStatus.CANCELLED if status == DeliveryStatus.CANCELLED else BatchStatus.DONE
    session.execute(
        update(Batch)
        .where(Batch.alert_id == alert.id, Batch.status.in_(WAITING_BATCH_STATUSES))
        .values(status=closed, finished_at=now)
    )
    settled: int = result.rowcount  # type: ignore[attr-defined]
    count_settled(alert, status, settled)
    return settled


def send_now(session: Session, alert_id: str, *, now: datetime | None = None) -> Alert:
    """End the hold window early: the alert becomes due now and its trigger fires."""
    now = now or utcnow()
    alert = get_alert(session, alert_id, for_update=True)
    if alert.status != AlertStatus.SCHEDULED:
        raise AlertNotCancellable(f"alert is already {alert.status}")
    if alert.send_at > now:
        alert.expires_at = now + timedelta(seconds=alert.ttl_seconds)
        alert.send_at = now
        add_trigger(session, TriggerKind.PLAN, alert.id, due_at=now)
    session.flush()
    return alert


def pending_count(alert: Alert) -> int:
    return (
        alert.audience
        - alert.sent
        - alert.failed
        - alert.pruned
        - alert.cancelled
        - alert.suppressed
    )


def alert_view(alert: Alert) -> dict[str, object]:
    """The public JSON shape of an alert (``GET /v1/alerts/{id}``)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": alert.id,
        "status": alert.status,
        "status_reason": alert.status_reason,
        "headline": alert.headline,
        "body": alert.body,
        "url": alert.url,
        "image_url": alert.image_url,
        "topics": alert.topics,
        "priority": alert.priority,
        "urgency": alert.urgency,
        "locale": alert.locale,
        "translations": alert.translations or {},
        "locales": alert.locales,
        "apps": alert.apps,
        "source": alert.source,
        "article_id": alert.article_id,
        "hold_seconds": alert.hold_seconds,
        "ttl_seconds": alert.ttl_seconds,
        "send_at": iso(alert.send_at),
        "expires_at": iso(alert.expires_at),
        "counts": {
            "audience": alert.audience,
            "sent": alert.sent,
            "failed": alert.failed,
            "pruned": alert.pruned,
            "cancelled": alert.cancelled,
            "suppressed": alert.suppressed,
            "pending": pending_count(alert),
            "silent": alert.silent,
            "suppressed_by_reason": {
                "quiet_hours": alert.suppressed_quiet_hours,
                "daily_cap": alert.suppressed_daily_cap,
            },
        },
        "opens": alert.opens,
        "open_rate": open_rate(alert.opens, alert.sent),
        "timings": {
            "created": iso(alert.created_at),
            "event_received": iso(alert.event_received_at),
            "first_send": iso(alert.first_send_at),
            "last_send": iso(alert.last_send_at),
            "finished": iso(alert.finished_at),
            "cancelled": iso(alert.cancelled_at),
        },
        "planned": alert.planned_at is not None,
    }


def _language(locale: str | None, default_locale: str) -> str:
    """The language part of a device locale (``fr-CA`` -> ``fr``), as the planner matches it."""
    tag = locale or default_locale
    return tag.replace("_", "-").split("-", 1)[0].lower()


def by_locale(session: Session, alert_id: str, default_locale: str) -> dict[str, dict[str, int]]:
    """An alert's outcomes per device language, for the console's per-language counts.

    One GROUP BY over the alert's deliveries joined to their devices, by full locale and status
    (the rows are few: locales times statuses); the locales are folded into languages here so the
    SQL stays the same on PostgreSQL and SQLite. A device without a locale counts as the default
    locale, as in the planner. Each language has every delivery status (zeros included) and
    ``silent`` (among ``sent``), so the numbers add up per language as the alert's counts do.
    """
    rows = session.execute(
        select(
            Device.locale,
            Delivery.status,
            func.count(),
            func.sum(case((Delivery.silent, 1), else_=0)),
        )
        .join(Device, Device.id == Delivery.device_id)
        .where(Delivery.alert_id == alert_id)
        .group_by(Device.locale, Delivery.status)
    ).all()
    languages = _counts_by(
        (_language(locale, default_locale), status, number, silent)
        for locale, status, number, silent in rows
    )
    return dict(sorted(languages.items(), key=lambda item: (-item[1]["audience"], item[0])))


def by_app(session: Session, alert_id: str) -> dict[str, dict[str, int]]:
    """An alert's outcomes per app: one GROUP BY over its deliveries and their batches.

    Every batch is of one app, so the batch says the app even of a device deleted since. Each
    app has every delivery status (zeros included), ``silent`` and ``audience``, adding up as the
    alert's own counts do.
    """
    rows = session.execute(
        select(
            Batch.app,
            Delivery.status,
            func.count(),
            func.sum(case((Delivery.silent, 1), else_=0)),
        )
        .join(Batch, Batch.id == Delivery.batch_id)
        .where(Delivery.alert_id == alert_id)
        .group_by(Batch.app, Delivery.status)
    ).all()
    return dict(sorted(_counts_by(tuple(row) for row in rows).items()))


def _counts_by(
    rows: Iterable[tuple[str, DeliveryStatus, int, int | None]],
) -> dict[str, dict[str, int]]:
    """Fold ``(key, status, devices, silent)`` rows into counts per key: every delivery status
    (zeros included), ``silent`` (among ``sent``) and ``audience``, adding up as an alert's do."""
    grouped: dict[str, dict[str, int]] = {}
    for key, status, number, silent in rows:
        counts = grouped.setdefault(
            key, {**{s.value: 0 for s in DeliveryStatus}, "silent": 0, "audience": 0}
        )
        counts[str(status)] += number
        counts["audience"] += number
        if status == DeliveryStatus.SENT:
            counts["silent"] += int(silent or 0)
    return grouped


def to_push_alert(alert: Alert, public_url: str | None = None) -> PushAlert:
    """The sender's view of an alert; with ``public_url``, web clicks pass the open counter."""
    return PushAlert(
        alert_id=alert.id,
        headline=alert.headline,
        body=alert.body,
        url=alert.url,
        image_url=alert.image_url,
        expires_at=alert.expires_at,
        ttl_seconds=alert.ttl_seconds,
        topics=tuple(alert.topics),
        analytics_label=f"alert-{alert.id[:8]}",
        open_url=f"{public_url.rstrip('/')}/o/{alert.id}" if public_url else None,
    )
