"""Daily-cap places of devices a stopped alert never reached are given back, on both backends.

A capped device takes its place when its batch is decided, before FCM answers. A batch that FCM
asked to retry keeps those places while it waits; if its alert is cancelled or expires then, the
devices are settled unsent and must not count against the reader's cap for the rest of the day.
Real planner, batch sender, cancel and sweeper on SQLite and PostgreSQL; a fake FCM.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier.core.models import DeviceSend, utcnow
from notifier.pipeline import planner
from notifier.pipeline.sweeper import sweep
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import Clock, FakeSender, retry

RETRY_AFTER = 600.0


class NoPublisher:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        """The sweeper's triggers are not what these tests look at."""


@pytest.fixture
def send_path(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SendPath]:
    monkeypatch.setattr(planner, "PAGE_SIZE", 4)
    runtime = Runtime.start(make_settings(tmp_path, database_url=db_url))
    yield SendPath(runtime, Clock(utcnow()))
    runtime.close()


def places(send_path: SendPath, alert_id: str) -> set[int]:
    with send_path.runtime.sessions() as session:
        return set(
            session.scalars(select(DeviceSend.device_id).where(DeviceSend.alert_id == alert_id))
        )


def send_once(send_path: SendPath, alert_id: str, sender: FakeSender) -> list[int]:
    batches = send_path.plan(alert_id)
    for batch_id in batches:
        send_path.send(batch_id, sender)
    return batches


def waiting_alert(send_path: SendPath) -> str:
    """An alert to two readers with a cap of one: one accepted, one waiting for FCM's retry."""
    send_path.add_device("accepted-0001", max_per_day=1)
    send_path.add_device("retried-0001", max_per_day=1)
    alert_id = send_path.new_alert()
    send_once(send_path, alert_id, FakeSender(script={"retried-0001": retry(after=RETRY_AFTER)}))
    assert send_path.statuses(alert_id) == {"sent": 1, "pending": 1}
    assert len(places(send_path, alert_id)) == 2  # the waiting device holds its place
    return alert_id


def next_alert_outcomes(send_path: SendPath) -> dict[str, str]:
    following = send_path.new_alert()
    send_once(send_path, following, FakeSender())
    send_path.assert_counts_add_up(following)
    return {token: row.status for token, row in send_path.deliveries(following).items()}


def test_cancelling_an_alert_waiting_to_retry_gives_its_unsent_devices_places_back(
    send_path: SendPath,
) -> None:
    alert_id = waiting_alert(send_path)

    send_path.cancel(alert_id)

    assert send_path.statuses(alert_id) == {"sent": 1, "cancelled": 1}
    send_path.assert_counts_add_up(alert_id)
    # The reader who got the cancelled alert still used their one place; the other did not.
    assert next_alert_outcomes(send_path) == {"accepted-0001": "suppressed", "retried-0001": "sent"}


def test_an_alert_expiring_while_a_batch_waits_to_retry_gives_the_places_back(
    send_path: SendPath,
) -> None:
    alert_id = waiting_alert(send_path)
    send_path.clock.advance(3600)  # the alert's TTL

    sweep(
        send_path.runtime.sessions,
        NoPublisher(),
        requeue_after=timedelta(seconds=60),
        now=send_path.clock(),
    )

    alert = send_path.alert(alert_id)
    assert (alert.status, alert.failed) == ("expired", 1)
    assert send_path.statuses(alert_id) == {"sent": 1, "failed": 1}
    assert next_alert_outcomes(send_path) == {"accepted-0001": "suppressed", "retried-0001": "sent"}


def test_a_batch_in_flight_when_its_alert_is_cancelled_gives_back_what_it_then_closes(
    send_path: SendPath,
) -> None:
    """The batch was being sent when the editor cancelled: FCM's retry leaves it waiting on a
    stopped alert, and the run that closes it gives its devices' places back."""
    send_path.add_device("retried-0001", max_per_day=1)
    alert_id = send_path.new_alert()
    sender = FakeSender(
        script={"retried-0001": retry(after=RETRY_AFTER)},
        during_send=lambda: send_path.cancel(alert_id),
    )
    [batch_id] = send_once(send_path, alert_id, sender)
    assert places(send_path, alert_id)  # held while the batch waits
    send_path.clock.advance(RETRY_AFTER + 1)

    result = send_path.send(batch_id, FakeSender())

    assert result.state == "cancelled"
    assert send_path.statuses(alert_id) == {"cancelled": 1}
    send_path.assert_counts_add_up(alert_id)
    assert places(send_path, alert_id) == set()
    assert next_alert_outcomes(send_path) == {"retried-0001": "sent"}
