"""The send path in-process: real planner, batch sender and recording; a fake sender.

No Redis, Celery worker or emulator process. Each test runs on SQLite (the session's migrated
file) and on PostgreSQL (a private schema; skipped like every service test when it is not
running), each emptied before the test (``db_url``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from notifier.alerts.service import AlertDraft, cancel_alert, create_alert
from notifier.core.counters import read_counters
from notifier.core.db import transaction
from notifier.core.models import Alert, Batch, Delivery, Device, utcnow
from notifier.pipeline import planner
from notifier.pipeline.quota import LocalTokenBucket, SendLimiter
from notifier.pipeline.send import BatchResult, send_batch
from notifier.runtime import Runtime
from notifier.subscriptions.service import subscribe
from tests.conftest import make_settings
from tests.send_path.fake_sender import Clock, FakeSender

LEASE_SECONDS = 60
MAX_ATTEMPTS = 4


@dataclass
class DeliveryRow:
    status: str
    error_code: str | None
    message_name: str | None
    attempts: int


@dataclass
class SendPath:
    """One test's world: a runtime on SQLite, a clock, and the steps of the flow as calls."""

    runtime: Runtime
    clock: Clock

    def add_devices(
        self, prefix: str, count: int, topics: tuple[str, ...] = ("israel",)
    ) -> list[str]:
        tokens = [f"{prefix}-{i:04d}:APA91b{'x' * 30}" for i in range(count)]
        with transaction(self.runtime.sessions) as session:
            for token in tokens:
                subscribe(session, token=token, platform="android", topics=list(topics))
        return tokens

    def one_batch(self, prefix: str, count: int) -> tuple[list[str], str, int]:
        """``count`` fresh devices on "israel" and an alert to them, planned into its one batch.

        The set-up most send tests start from: returns the tokens, the alert id and the batch id.
        """
        tokens = self.add_devices(prefix, count)
        alert_id = self.new_alert()
        [batch_id] = self.plan(alert_id)
        return tokens, alert_id, batch_id

    def add_device(
        self,
        token: str,
        *,
        platform: str = "android",
        topics: tuple[str, ...] = ("israel",),
        **preferences: object,
    ) -> str:
        """One device with preferences as the API takes them (``quiet_hours`` as a dict)."""
        with transaction(self.runtime.sessions) as session:
            subscribe(
                session,
                token=token,
                platform=platform,
                topics=list(topics),
                preferences=preferences,
            )
        return token

    def new_alert(
        self, *, ttl: int = 3600, topics: tuple[str, ...] = ("israel",), **fields: Any
    ) -> str:
        """An alert with ``AlertDraft`` ``fields`` (urgency, locale, translations, locales)."""
        with transaction(self.runtime.sessions) as session:
            alert = create_alert(
                session,
                AlertDraft(
                    headline="Breaking", url="https://news.example/a", topics=topics, **fields
                ),
                default_hold=0,
                default_ttl=ttl,
                now=self.clock(),
            )
            return alert.id

    def plan(self, alert_id: str) -> list[int]:
        """Plan the whole audience with the real planner; returns the batch ids in order."""
        result = planner.plan_slice(self.runtime.sessions, alert_id, now=self.clock())
        assert result.state in ("planned", "stopped"), result
        return result.batch_ids

    def send(
        self,
        batch_id: int,
        sender: FakeSender,
        *,
        limiter: SendLimiter | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        default_max_per_day: int | None = None,
    ) -> BatchResult:
        return send_batch(
            self.runtime.sessions,
            batch_id,
            sender=sender,
            limiter=limiter or LocalTokenBucket(600_000),
            lease_seconds=LEASE_SECONDS,
            max_attempts=max_attempts,
            clock=self.clock,
            default_max_per_day=default_max_per_day,
        )

    def cancel(self, alert_id: str) -> None:
        with transaction(self.runtime.sessions) as session:
            cancel_alert(session, alert_id, now=self.clock())

    def alert(self, alert_id: str) -> Alert:
        with self.runtime.sessions() as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            session.expunge(alert)
            return alert

    def batch(self, batch_id: int) -> Batch:
        with self.runtime.sessions() as session:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            session.expunge(batch)
            return batch

    def deliveries(self, alert_id: str) -> dict[str, DeliveryRow]:
        """Each planned device's delivery, by token (``device-<id>`` for a deleted device)."""
        with self.runtime.sessions() as session:
            rows = session.execute(
                select(Delivery, Device.token)
                .outerjoin(Device, Device.id == Delivery.device_id)
                .where(Delivery.alert_id == alert_id)
            ).all()
        return {
            token or f"device-{d.device_id}": DeliveryRow(
                d.status, d.error_code, d.message_name, d.attempts
            )
            for d, token in rows
        }

    def statuses(self, alert_id: str) -> Counter[str]:
        return Counter(row.status for row in self.deliveries(alert_id).values())

    def device_state(self, token: str) -> tuple[str, str | None]:
        with self.runtime.sessions() as session:
            device = session.scalar(select(Device).where(Device.token == token))
            assert device is not None
            return device.state, device.dead_reason

    def counter(self, metric: str) -> float:
        """A metric's value as /metrics would show it, summed over its labels."""
        with self.runtime.sessions() as session:
            return sum(value for name, _, value in read_counters(session) if name == metric)

    def assert_counts_add_up(self, alert_id: str) -> None:
        """The alert's counters agree with its deliveries, and every device is counted once."""
        alert = self.alert(alert_id)
        statuses = self.statuses(alert_id)
        pending = (
            alert.audience
            - alert.sent
            - alert.failed
            - alert.pruned
            - alert.cancelled
            - alert.suppressed
        )
        assert alert.audience == sum(statuses.values())
        assert (
            alert.sent,
            alert.failed,
            alert.pruned,
            alert.cancelled,
            alert.suppressed,
            pending,
        ) == (
            statuses["sent"],
            statuses["failed"],
            statuses["pruned"],
            statuses["cancelled"],
            statuses["suppressed"],
            statuses["pending"],
        )
        assert alert.suppressed == alert.suppressed_quiet_hours + alert.suppressed_daily_cap
        assert 0 <= alert.silent <= alert.sent


@pytest.fixture
def send_path(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SendPath]:
    """An empty database of each backend in turn (SQLite, then PostgreSQL: the send path's
    statements differ between them), with the topic catalogue and pages of 4 devices (small
    batches)."""
    monkeypatch.setattr(planner, "PAGE_SIZE", 4)
    runtime = Runtime.start(make_settings(tmp_path, database_url=db_url))
    yield SendPath(runtime, Clock(utcnow()))
    runtime.close()
