"""The ops view: queues, workers, alerts in flight and just finished, the sweeper; broker and DB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.alerts.latency import alert_latencies
from notifier.alerts.opens import open_rate
from notifier.alerts.service import pending_count
from notifier.core.counters import minutes_since
from notifier.core.models import Alert, Batch, Heartbeat, utcnow
from notifier.core.settings import Settings
from notifier.core.vocabulary import WAITING_BATCH_STATUSES, AlertStatus
from notifier.observability.queues import inspect_broker


def alerts_in_flight(session: Session, now: datetime) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Alert).where(Alert.status == AlertStatus.SENDING).order_by(Alert.send_at).limit(50)
    ).all()
    result = []
    for alert in rows:
        done = alert.audience - pending_count(alert)
        # Rate since sending began (planning start), not since the first batch was recorded,
        # which would overstate it early in a send.
        began = alert.planning_started_at or alert.send_at
        elapsed = (now - began).total_seconds()
        result.append(
            {
                "id": alert.id,
                "headline": alert.headline,
                "audience": alert.audience,
                "sent": alert.sent,
                "failed": alert.failed,
                "pruned": alert.pruned,
                "suppressed": alert.suppressed,
                "silent": alert.silent,
                "pending": pending_count(alert),
                "planned": alert.planned_at is not None,
                "progress": round(done / alert.audience, 4) if alert.audience else 0.0,
                "rate_per_second": round(alert.sent / elapsed, 1) if elapsed > 0 else 0.0,
                "send_at": alert.send_at.isoformat(),
            }
        )
    return result


RECENT_ALERTS = 10


def recent_alerts(session: Session, limit: int = RECENT_ALERTS) -> list[dict[str, Any]]:
    """The last finished alerts (sent, failed, expired, cancelled), newest first, with their
    delivery percentiles.

    Opens keep arriving long after a send finishes (readers click a notification hours later),
    so this is where ops watch an alert's reach once it has left "in flight". Test sends go to
    editors' own devices and would only skew the open rate, so they are left out.
    """
    rows = session.scalars(
        select(Alert)
        .where(Alert.finished_at.is_not(None), Alert.test_only.is_(False))
        .order_by(Alert.finished_at.desc(), Alert.id)
        .limit(limit)
    ).all()
    # Finished alerts' figures come from the cache after the first poll (see alerts.latency).
    latencies = alert_latencies(session, rows)
    by_app = audience_by_app(session, [alert.id for alert in rows])
    return [
        {
            "id": alert.id,
            "headline": alert.headline,
            "status": alert.status,
            "finished_at": alert.finished_at.isoformat() if alert.finished_at else None,
            "audience": alert.audience,
            "sent": alert.sent,
            "failed": alert.failed,
            "pruned": alert.pruned,
            "cancelled": alert.cancelled,
            "opens": alert.opens,
            "open_rate": open_rate(alert.opens, alert.sent),
            "latency": latencies[alert.id].as_json(),
            "audience_by_app": by_app.get(alert.id, {}),
        }
        for alert in rows
    ]


def audience_by_app(session: Session, alert_ids: list[str]) -> dict[str, dict[str, int]]:
    """Each alert's audience per app, summed from its batches (each of one app): one GROUP BY
    over a few rows per 500 devices, cheap enough for the dashboard's 2 s refresh."""
    if not alert_ids:
        return {}
    result: dict[str, dict[str, int]] = {}
    for alert_id, app, size in session.execute(
        select(Batch.alert_id, Batch.app, func.sum(Batch.size))
        .where(Batch.alert_id.in_(alert_ids))
        .group_by(Batch.alert_id, Batch.app)
        .order_by(Batch.alert_id, Batch.app)
    ):
        result.setdefault(alert_id, {})[app] = int(size or 0)
    return result


def oldest_pending_age(session: Session, now: datetime) -> float:
    """Seconds the oldest owed work has waited: a due alert not yet planned, or a due batch."""
    due_alert = session.scalar(
        select(func.min(Alert.send_at)).where(
            Alert.status == AlertStatus.SCHEDULED, Alert.send_at <= now
        )
    )
    due_batch = session.scalar(
        select(func.min(func.coalesce(Batch.next_attempt_at, Batch.created_at)))
        .join(Alert, Alert.id == Batch.alert_id)
        .where(Alert.status == AlertStatus.SENDING, Batch.status.in_(WAITING_BATCH_STATUSES))
    )
    candidates = [t for t in (due_alert, due_batch) if t is not None and t <= now]
    return max(0.0, (now - min(candidates)).total_seconds()) if candidates else 0.0


def sweeper_state(session: Session, now: datetime) -> dict[str, Any]:
    beat = session.get(Heartbeat, "sweeper")
    if beat is None:
        return {"last_run": None, "age_seconds": None, "detail": {}}
    return {
        "last_run": beat.at.isoformat(),
        "age_seconds": round((now - beat.at).total_seconds(), 1),
        "detail": beat.detail,
    }


def alerts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()
    return {status: int(n) for status, n in rows}


def throughput(session: Session, now: datetime, minutes: int = 60) -> list[dict[str, Any]]:
    """Per-minute outcome counts for the last ``minutes``, every minute present (zeros too)."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    buckets: dict[datetime, dict[str, Any]] = {}
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        buckets[minute] = {
            "minute": minute.isoformat(),
            "sent": 0,
            "failed": 0,
            "pruned": 0,
            "retried": 0,
            "suppressed": 0,
        }
    for minute, outcome, count in minutes_since(session, start):
        if minute in buckets and outcome in buckets[minute]:
            buckets[minute][outcome] += count
    return list(buckets.values())


def snapshot(
    session: Session,
    settings: Settings,
    workers: Callable[[], list[dict[str, Any]]],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything ``GET /v1/ops/queues`` and ``notifier status`` show."""
    seen = workers()  # may wait for answers: read the clock after it
    broker = inspect_broker(settings)
    now = now or utcnow()
    return {
        "generated_at": now.isoformat(),
        "broker": broker.as_json(),
        "queues": [q.as_json() for q in broker.queues],
        "workers": seen,
        "alerts_in_flight": alerts_in_flight(session, now),
        "recent_alerts": recent_alerts(session),
        "alerts_by_status": alerts_by_status(session),
        "oldest_pending_age_seconds": round(oldest_pending_age(session, now), 1),
        "sweeper": sweeper_state(session, now),
    }
