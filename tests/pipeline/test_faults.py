"""The fault scenarios of reliability.md: whatever breaks, nothing that was accepted is lost."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter

import redis
from sqlalchemy import func, select

from notifier.core.models import Batch, Delivery, Outbox
from notifier.intake.signatures import sign_webhook
from tests.pipeline.conftest import (
    BROKER_DB,
    DOWN_BROKER_URLS,
    Stack,
    _redis_db_url,
    on_both_brokers,
    subscribe_many,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def signed_event(stack: Stack, webhook_id: str, article: dict) -> tuple[int, dict]:
    body = json.dumps({"type": "article.published", "data": article}).encode()
    ts = int(time.time())
    response = stack.client.post(
        "/v1/events",
        data=body,
        content_type="application/json",
        headers={
            "webhook-id": webhook_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_webhook(SECRET, webhook_id, ts, body),
        },
    )
    return response.status_code, dict(response.json)


def article(article_id: str = "art-1", **extra: object) -> dict:
    data = {
        "id": article_id,
        "url": f"https://news.example/{article_id}",
        "headline": "Sirens in the north",
        "topics": ["israel"],
        "breaking": True,
    }
    data.update(extra)
    return data


@on_both_brokers
def test_worker_killed_mid_batch_the_batch_runs_again_and_nothing_stays_pending(
    stack_factory,
) -> None:
    stack = stack_factory(lease_seconds="4")
    tokens = subscribe_many(stack, "kill", 1500, ["israel"])
    stack.emulator.faults(latency_ms=1500)  # every request takes long enough to be killed in
    worker = stack.start_worker(concurrency=1)
    alert_id = stack.post_alert()["id"]
    deadline = time.monotonic() + 30
    while not stack.emulator.messages() and time.monotonic() < deadline:
        time.sleep(0.1)
    stack.kill_worker(worker)  # SIGKILL while a batch is in FCM's hands
    stack.emulator.faults()
    finished_before_kill = {m["token"] for m in stack.emulator.messages()}

    stack.start_worker()
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=90)

    assert view["status"] == "sent"
    assert view["counts"]["sent"] == 1500 and view["counts"]["pending"] == 0
    received = Counter(stack.emulator.tokens())
    assert set(received) == set(tokens)
    # Only the batch in flight at the kill may be sent twice; it collapses on the device.
    assert sum(1 for n in received.values() if n > 1) <= 500
    with stack.runtime.sessions() as session:
        done_batches = session.scalar(select(func.count()).where(Batch.status == "done"))
    assert done_batches == 3
    assert finished_before_kill <= set(received)


@on_both_brokers
def test_broker_down_at_intake_the_event_is_kept_and_sent_when_it_returns(
    stack_factory, broker: str
) -> None:
    stack = stack_factory(webhook_secrets=SECRET, broker_url=DOWN_BROKER_URLS[broker])
    tokens = subscribe_many(stack, "bd", 30, ["israel"])

    status, body = signed_event(stack, "msg_broker_down", article())
    assert status == 202
    with stack.runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(Outbox.dispatched_at.is_(None))) == 1

    # The broker comes back: workers and the beat's sweeper run against the real one.
    healthy = stack_factory(webhook_secrets=SECRET)
    healthy.start_worker()
    time.sleep(5.5)  # the sweeper leaves fresh rows to the API that wrote them
    view = healthy.wait_for_status(body["alert"]["id"], sweeping=True)
    assert view["status"] == "sent"
    assert sorted(healthy.emulator.tokens()) == sorted(tokens)


def test_api_dies_between_commit_and_enqueue_the_sweeper_sends_it_once(stack) -> None:
    class Crash:
        def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
            raise SystemExit("the API process died here")

    tokens = subscribe_many(stack, "crash", 20, ["israel"])
    real = stack.runtime.publisher
    stack.runtime.publisher = Crash()
    with contextlib.suppress(SystemExit):
        stack.post_alert()
    stack.runtime.publisher = real
    with stack.runtime.sessions() as session:
        alert_id = session.scalar(select(Outbox.ref))
    stack.start_worker()
    time.sleep(5.5)
    view = stack.wait_for_status(alert_id, sweeping=True)
    assert view["status"] == "sent"
    assert Counter(stack.emulator.tokens()) == Counter(tokens)


def test_redis_flushed_while_queued_the_sweeper_reenqueues_from_the_database(stack) -> None:
    tokens = subscribe_many(stack, "flush", 1200, ["israel"])
    alert_id = stack.post_alert()["id"]  # the plan message waits in Redis: no worker yet
    redis.Redis.from_url(_redis_db_url(BROKER_DB)).flushdb()
    stack.start_worker()
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=90)
    assert view["counts"]["sent"] == 1200
    assert Counter(stack.emulator.tokens()) == Counter(tokens)


def test_fcm_fault_storm_backs_off_and_every_device_ends_sent(stack) -> None:
    tokens = subscribe_many(stack, "storm", 600, ["israel"])
    stack.emulator.faults(unavailable_rate=0.3, internal_rate=0.2)
    stack.start_worker()
    alert_id = stack.post_alert()["id"]
    # The storm lasts until it has really hit some devices (however slowly a busy machine starts).
    wait_until(lambda: count_deliveries(stack, Delivery.attempts >= 1, Delivery.status != "sent"))
    stack.emulator.faults()  # the storm passes
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=120)
    assert view["status"] == "sent"
    assert view["counts"]["sent"] == 600 and view["counts"]["pruned"] == 0
    assert set(stack.emulator.tokens()) == set(tokens)
    with stack.runtime.sessions() as session:
        retried = session.scalar(select(func.count()).where(Delivery.attempts > 1))
    assert retried > 0  # some devices really were retried, and only those


def test_quota_exceeded_waits_at_least_what_fcm_asks(stack) -> None:
    subscribe_many(stack, "quota", 10, ["israel"])
    stack.emulator.faults(quota_rate=1.0, retry_after_seconds=90)
    stack.start_worker()
    alert_id = stack.post_alert()["id"]
    deadline = time.monotonic() + 30
    batch = None
    while time.monotonic() < deadline:
        with stack.runtime.sessions() as session:
            batch = session.scalar(select(Batch).where(Batch.status == "retry_wait"))
        if batch is not None:
            break
        time.sleep(0.2)
    assert batch is not None and batch.next_attempt_at is not None
    assert (batch.next_attempt_at - batch.enqueued_at).total_seconds() >= 90
    view = stack.alert(alert_id)
    assert view["counts"]["pending"] == 10 and view["counts"]["pruned"] == 0


def test_retries_stop_at_the_ttl_and_devices_fail_with_a_reason(stack) -> None:
    subscribe_many(stack, "ttl", 5, ["israel"])
    stack.emulator.faults(unavailable_rate=1.0)
    stack.start_worker()
    alert_id = stack.post_alert(ttl_seconds=60)["id"]
    # Once the audience is planned, the alert is left with only seconds to live.
    wait_until(lambda: count_deliveries(stack, Delivery.alert_id == alert_id) == 5)
    with stack.runtime.sessions.begin() as session:
        from datetime import timedelta

        from notifier.core.models import Alert, utcnow

        row = session.get(Alert, alert_id)
        assert row is not None
        row.expires_at = utcnow() + timedelta(seconds=4)
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=60)
    assert view["status"] in ("failed", "expired")
    assert view["counts"]["failed"] == 5 and view["counts"]["pending"] == 0
    with stack.runtime.sessions() as session:
        reasons = set(session.scalars(select(Delivery.error_code)))
    assert reasons <= {"UNAVAILABLE:gave_up", "expired"}
    assert stack.emulator.messages() == []


def test_the_same_webhook_twice_makes_one_alert_and_one_fanout(stack_factory) -> None:
    stack = stack_factory(webhook_secrets=SECRET)
    tokens = subscribe_many(stack, "dup", 30, ["israel"])
    stack.start_worker()
    first_status, first = signed_event(stack, "msg_dup_1", article("art-dup"))
    again_status, again = signed_event(stack, "msg_dup_1", article("art-dup"))
    retry_status, retry = signed_event(stack, "msg_dup_2", article("art-dup"))
    assert first_status == again_status == retry_status == 202
    assert first["alert"]["id"] == again["alert"]["id"] == retry["alert"]["id"]
    stack.wait_for_status(first["alert"]["id"])
    time.sleep(1)
    assert Counter(stack.emulator.tokens()) == Counter(tokens)


@on_both_brokers
def test_duplicate_task_messages_send_each_device_once(stack) -> None:
    tokens = subscribe_many(stack, "dupmsg", 900, ["israel"])
    alert_id = stack.post_alert()["id"]
    for _ in range(3):  # the broker redelivers the plan trigger
        stack.runtime.publisher.publish("plan", alert_id)
    stack.start_worker(concurrency=3)
    time.sleep(1)
    with stack.runtime.sessions() as session:
        batch_ids = list(session.scalars(select(Batch.id)))
    for batch_id in batch_ids:  # and every batch message twice more
        stack.runtime.publisher.publish("send", str(batch_id))
        stack.runtime.publisher.publish("send", str(batch_id))
    stack.wait_for_status(alert_id)
    time.sleep(1)
    assert Counter(stack.emulator.tokens()) == Counter(tokens)


def count_deliveries(stack, *where) -> int:
    with stack.runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the pipeline did not get there in time"
        time.sleep(0.1)
