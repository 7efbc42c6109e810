"""Fault 11 (reliability.md): FCM hanging, every request held past the sender's client timeout.

The emulator's latency fault holds each send 12 s; the sender gives up on a request after 10 s
(``FcmSender``'s timeout), which it reports as a retryable ``network`` outcome. So a hanging FCM
must cost time, never a device or a worker: the batch is retried with backoff, its devices end
sent once FCM answers again, or failed with a reason when the alert's TTL comes first, and the
worker process, once the timeout returns it, takes the next task.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from notifier.core.models import Alert, Batch, Delivery, utcnow
from notifier.core.vocabulary import BatchStatus
from tests.pipeline.conftest import Stack, subscribe_many

HANG_MS = 12_000  # above the sender's 10 s client timeout
# Longer than one attempt can take against a hanging FCM (one wave of requests: twice the
# timeout plus 5 s, the sender's outer bound), so no second worker takes a batch still in hand.
LEASE = "30"


def wait_until(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the pipeline did not get there in time"
        time.sleep(0.2)


def batches_waiting_to_retry(stack: Stack, alert_id: str) -> int:
    with stack.runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Batch)
                .where(Batch.alert_id == alert_id, Batch.status == BatchStatus.RETRY_WAIT)
            )
            or 0
        )


def test_fcm_hanging_sends_time_out_are_retried_and_end_sent_once_it_answers(
    stack_factory,
) -> None:
    stack = stack_factory(lease_seconds=LEASE)
    hung = subscribe_many(stack, "hang", 100, ["israel"])
    later = subscribe_many(stack, "next", 20, ["world"])
    stack.emulator.faults(latency_ms=HANG_MS)
    worker = stack.start_worker(concurrency=1)  # one process: if it stayed stuck, nothing moves
    alert_id = stack.post_alert()["id"]

    # The first attempt timed out and was scheduled again, rather than hanging the worker.
    wait_until(lambda: batches_waiting_to_retry(stack, alert_id) > 0)
    stack.emulator.faults()  # FCM answers again
    other_id = stack.post_alert(topics=["world"], headline="Next story")["id"]

    other = stack.wait_for_status(other_id, timeout=90)
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=120)

    assert other["status"] == "sent" and other["counts"]["sent"] == 20
    assert view["status"] == "sent"
    counts = view["counts"]
    assert counts["sent"] == 100 and counts["pending"] == 0
    assert counts["failed"] == 0 and counts["pruned"] == 0  # a timeout never prunes a token
    with stack.runtime.sessions() as session:
        first_try = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.alert_id == alert_id, Delivery.attempts < 2)
        )
    assert first_try == 0  # every device of the hung batch really went round again
    received = Counter(stack.emulator.tokens())
    assert set(hung) <= set(received)
    # A request FCM held past the timeout may still have been delivered (real FCM may finish
    # what it started; the emulator drops a request whose client left), so a hung device may
    # get its alert twice, never more; the devices of the alert sent after the hang get it once.
    assert all(received[token] <= 2 for token in hung)
    assert all(received[token] == 1 for token in later)
    logs = stack.worker_logs()
    assert "TimeLimitExceeded" not in logs
    assert worker.poll() is None


def test_fcm_hanging_until_the_ttl_fails_every_device_with_a_reason(stack_factory) -> None:
    stack = stack_factory(lease_seconds=LEASE)
    subscribe_many(stack, "hangttl", 20, ["israel"])
    stack.emulator.faults(latency_ms=HANG_MS)  # never lifted
    worker = stack.start_worker(concurrency=1)
    alert_id = stack.post_alert(ttl_seconds=600)["id"]
    wait_until(
        lambda: (
            stack.alert(alert_id)["counts"]["pending"] == 20
            and batches_waiting_to_retry(stack, alert_id) + sending(stack, alert_id) > 0
        )
    )
    with stack.runtime.sessions.begin() as session:
        row = session.get(Alert, alert_id)
        assert row is not None
        row.expires_at = utcnow() + timedelta(seconds=15)  # now it has seconds to live

    stack.wait_for_status(alert_id, sweeping=True, timeout=120)
    # An alert expires at once; the devices of a batch still in FCM's hands are left to that
    # batch, which fails them when its attempt returns (its retry would land past the TTL).
    wait_until(lambda: stack.alert(alert_id)["counts"]["pending"] == 0)
    view = stack.alert(alert_id)

    assert view["status"] in ("failed", "expired"), view
    counts = view["counts"]
    assert counts["failed"] == 20 and counts["pending"] == 0
    assert counts["sent"] == 0 and counts["pruned"] == 0
    with stack.runtime.sessions() as session:
        reasons = set(
            session.scalars(select(Delivery.error_code).where(Delivery.alert_id == alert_id))
        )
    # Given up because the next try would land past the TTL, or expired by the sweeper.
    assert reasons and reasons <= {"network:gave_up", "expired"}
    assert "TimeLimitExceeded" not in stack.worker_logs()
    assert worker.poll() is None


def sending(stack: Stack, alert_id: str) -> int:
    with stack.runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Batch)
                .where(Batch.alert_id == alert_id, Batch.status == BatchStatus.SENDING)
            )
            or 0
        )
