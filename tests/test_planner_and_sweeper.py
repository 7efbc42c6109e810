"""Planner and sweeper as plain functions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.db import transaction
from notifier.core.models import Alert, Batch, Delivery, Device, Outbox, Subscription, utcnow
from notifier.pipeline.planner import PAGE_SIZE, plan_slice
from notifier.pipeline.sweeper import delete_stale_devices, sweep
from notifier.runtime import Runtime
from notifier.subscriptions.service import subscribe


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


def add_devices(runtime: Runtime, prefix: str, count: int, topics: list[str]) -> None:
    with transaction(runtime.sessions) as session:
        for i in range(count):
            subscribe(session, token=f"{prefix}-{i:05d}-tokenxx", platform="web", topics=topics)


def new_alert(runtime: Runtime, topics: tuple[str, ...] = ("israel",), **kw: object) -> str:
    with transaction(runtime.sessions) as session:
        alert = create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", topics=topics),
            default_hold=int(kw.get("hold", 0)),  # type: ignore[call-overload]
            default_ttl=3600,
        )
        return alert.id


def test_planner_pages_the_audience_once_per_device_across_topics(runtime: Runtime) -> None:
    add_devices(runtime, "a", 700, ["israel"])
    add_devices(runtime, "b", 400, ["israel", "world"])
    add_devices(runtime, "c", 150, ["world"])
    alert_id = new_alert(runtime, ("israel", "world"))
    published: list[int] = []
    result = plan_slice(runtime.sessions, alert_id, on_batch=published.append)
    assert result.state == "planned"
    assert result.devices == 1250
    with runtime.sessions() as session:
        sizes = list(session.scalars(select(Batch.size).order_by(Batch.seq)))
        deliveries = session.scalar(select(func.count()).select_from(Delivery))
        distinct = session.scalar(select(func.count(func.distinct(Delivery.device_id))))
        alert = session.get(Alert, alert_id)
    assert sizes == [PAGE_SIZE, PAGE_SIZE, 250]
    assert published == result.batch_ids
    assert deliveries == distinct == 1250
    assert alert is not None and alert.audience == 1250 and alert.planned_at is not None


def test_planner_skips_dead_devices_and_resumes_from_its_cursor(runtime: Runtime) -> None:
    add_devices(runtime, "d", 1200, ["israel"])
    with runtime.sessions.begin() as session:
        first_600 = select(Device.id).order_by(Device.id).limit(600).scalar_subquery()
        session.execute(update(Device).where(Device.id.in_(first_600)).values(state="dead"))
    alert_id = new_alert(runtime)
    partial = plan_slice(runtime.sessions, alert_id, max_pages=1)
    assert partial.state == "continue" and partial.continuation_trigger is not None
    rest = plan_slice(runtime.sessions, alert_id)
    assert rest.state == "planned"
    assert partial.devices + rest.devices == 600


def test_planner_leaves_an_alert_in_its_hold_window_alone(runtime: Runtime) -> None:
    add_devices(runtime, "h", 3, ["israel"])
    alert_id = new_alert(runtime, hold=300)
    assert plan_slice(runtime.sessions, alert_id).state == "not_due"
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0


def test_sweeper_publishes_lost_triggers_but_not_fresh_ones(runtime: Runtime) -> None:
    recorder = Recorder()
    old = new_alert(runtime)
    with runtime.sessions.begin() as session:
        session.execute(update(Outbox).values(created_at=utcnow() - timedelta(minutes=1)))
    fresh = new_alert(runtime)
    sweep(runtime.sessions, recorder, requeue_after=timedelta(seconds=60))
    assert ("plan", old) in recorder.published
    assert ("plan", fresh) not in recorder.published
    with runtime.sessions() as session:
        assert session.scalar(select(Outbox.dispatched_at).where(Outbox.ref == old)) is not None


def test_sweeper_requeues_batches_whose_lease_expired(runtime: Runtime) -> None:
    add_devices(runtime, "l", 10, ["israel"])
    alert_id = new_alert(runtime)
    batch_id = plan_slice(runtime.sessions, alert_id).batch_ids[0]
    with runtime.sessions.begin() as session:
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id)
            .values(status="sending", lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    recorder = Recorder()
    sweep(runtime.sessions, recorder, requeue_after=timedelta(seconds=60))
    assert ("send", str(batch_id)) in recorder.published


def test_sweeper_expires_alerts_past_their_ttl_and_counts_add_up(runtime: Runtime) -> None:
    add_devices(runtime, "x", 12, ["israel"])
    alert_id = new_alert(runtime)
    plan_slice(runtime.sessions, alert_id)
    with runtime.sessions.begin() as session:
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    sweep(runtime.sessions, Recorder(), requeue_after=timedelta(seconds=60))
    with runtime.sessions() as session:
        alert = session.get(Alert, alert_id)
        reasons = set(session.scalars(select(Delivery.error_code)))
    assert alert is not None
    assert alert.status == "expired"
    assert (alert.audience, alert.failed) == (12, 12)
    assert reasons == {"expired"}


def test_devices_not_seen_for_the_retention_period_are_deleted(runtime: Runtime) -> None:
    add_devices(runtime, "old", 3, ["israel"])
    with runtime.sessions.begin() as session:
        session.execute(update(Device).values(last_seen_at=utcnow() - timedelta(days=300)))
    add_devices(runtime, "new", 2, ["israel"])
    deleted = delete_stale_devices(runtime.sessions, older_than=timedelta(days=270))
    assert deleted == 3
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 2
        assert session.scalar(select(func.count()).select_from(Subscription)) == 2
