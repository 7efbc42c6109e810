"""A batch far past its app's quota is given back unsent, then sent when its tokens are there.

With several apps the sender bounds its wait for the quota (``max_wait``) so that one app's
fan-out never holds the worker slots another app's batches need. Real planner, batch sender and
recording on SQLite; a fake FCM and an in-memory bucket on a fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from notifier.core.models import Delivery, DeviceSend
from notifier.pipeline.quota import MAX_IN_TASK_WAIT_SECONDS, Deferred, LocalTokenBucket
from notifier.pipeline.send import BatchResult, send_batch
from tests.send_path.conftest import LEASE_SECONDS, MAX_ATTEMPTS, SendPath
from tests.send_path.fake_sender import FakeSender

# 23:30 UTC is 01:30 in Jerusalem: inside a 22:00-07:00 quiet window; 06:00 UTC is past it.
NIGHT = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
MORNING = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class TakenMeanwhile:
    """The app's bucket as a race leaves it: its tokens were near when this batch asked before
    its lease, and a batch of the same app on another worker took ~6 s of them just after."""

    def __init__(self, bucket: LocalTokenBucket) -> None:
        self.bucket = bucket
        self.max_chunk = bucket.max_chunk
        self.debt_after_race: float | None = None

    def peek(self, n: int) -> float:
        wait = self.bucket.peek(n)
        if self.debt_after_race is None:
            self.bucket.reserve(60)
            self.debt_after_race = self.bucket.peek(n)
        return wait

    def acquire(self, n: int) -> float:
        return self.bucket.acquire(n)

    def acquire_within(self, n: int, max_wait: float) -> float | Deferred:
        return self.bucket.acquire_within(n, max_wait)


def send(
    send_path: SendPath,
    batch_id: int,
    sender: FakeSender,
    bucket: LocalTokenBucket | TakenMeanwhile,
) -> BatchResult:
    return send_batch(
        send_path.runtime.sessions,
        batch_id,
        sender=sender,
        limiter=bucket,
        lease_seconds=LEASE_SECONDS,
        max_attempts=MAX_ATTEMPTS,
        clock=send_path.clock,
        max_wait=MAX_IN_TASK_WAIT_SECONDS,
    )


def test_a_batch_past_its_quota_is_deferred_unleased_and_later_sent(send_path: SendPath) -> None:
    _tokens, alert_id, batch_id = send_path.one_batch("early", 3)
    monotonic = Monotonic()
    bucket = LocalTokenBucket(600, clock=monotonic, sleep=monotonic.sleep)  # 3 burst, ~9.6/s
    bucket.reserve(60)  # other batches of the app took ~6 s of its tokens ahead
    debt = bucket.peek(3)
    sender = FakeSender()

    result = send(send_path, batch_id, sender, bucket)

    assert result.state == "deferred" and result.retry_in == debt > MAX_IN_TASK_WAIT_SECONDS
    assert sender.requests == [] and monotonic.slept == []  # not sent, no slot held asleep
    assert bucket.peek(3) == debt  # asking took no tokens
    batch = send_path.batch(batch_id)
    # Not even leased: the batch waits as planned, the sweeper's clock on it restarted.
    assert (batch.status, batch.attempts, batch.lease_owner) == ("pending", 0, None)
    assert batch.enqueued_at == send_path.clock()
    assert send_path.counter("notifier_app_quota_deferrals_total") == 1
    send_path.assert_counts_add_up(alert_id)

    monotonic.now += result.retry_in
    result = send(send_path, batch_id, sender, bucket)

    assert result.state == "done" and len(sender.sent_tokens) == 3
    assert send_path.batch(batch_id).attempts == 1
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_whose_tokens_went_while_it_leased_is_given_back_uncounted_and_later_sent(
    send_path: SendPath,
) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device("capped-0001", max_per_day=1)
    send_path.add_device(
        "quiet-0001", timezone="Asia/Jerusalem", quiet_hours={"start": "22:00", "end": "07:00"}
    )
    send_path.add_device("plain-0001")
    alert_id = send_path.new_alert(ttl=86_400)
    [batch_id] = send_path.plan(alert_id)
    monotonic = Monotonic()
    bucket = LocalTokenBucket(600, clock=monotonic, sleep=monotonic.sleep)  # 3 burst, ~9.6/s
    raced = TakenMeanwhile(bucket)
    sender = FakeSender()

    result = send(send_path, batch_id, sender, raced)

    assert result.state == "deferred"
    assert result.retry_in is not None and result.retry_in > MAX_IN_TASK_WAIT_SECONDS
    assert sender.requests == [] and monotonic.slept == []  # not sent, no slot held asleep
    assert bucket.peek(3) == raced.debt_after_race  # the deferral took no tokens
    batch = send_path.batch(batch_id)
    assert (batch.status, batch.attempts, batch.lease_owner) == ("retry_wait", 0, None)
    assert send_path.statuses(alert_id) == {"pending": 3}
    with send_path.runtime.sessions() as session:
        # What the lease decided for the readers is undone: no cap place, no silent mark.
        assert (
            session.scalars(select(DeviceSend).where(DeviceSend.alert_id == alert_id)).all() == []
        )
        assert not any(
            session.scalars(select(Delivery.silent).where(Delivery.alert_id == alert_id))
        )
    send_path.assert_counts_add_up(alert_id)
    # A duplicate message before its time finds it not due, and sends nothing.
    assert send(send_path, batch_id, sender, raced).state == "not_due"

    # Its tokens have accrued (and the night is over): the batch goes out, as a first attempt.
    send_path.clock.now = MORNING
    monotonic.now += result.retry_in
    result = send(send_path, batch_id, sender, raced)

    assert result.state == "done"
    assert sorted(sender.sent_tokens) == ["capped-0001", "plain-0001", "quiet-0001"]
    assert not any(t.silent for _, targets in sender.requests for t in targets)
    assert send_path.batch(batch_id).attempts == 1
    assert {row.attempts for row in send_path.deliveries(alert_id).values()} == {1}
    alert = send_path.alert(alert_id)
    assert (alert.sent, alert.silent, alert.status) == (3, 0, "sent")
    with send_path.runtime.sessions() as session:
        places = session.scalars(select(DeviceSend).where(DeviceSend.alert_id == alert_id)).all()
    assert len(places) == 1  # the capped reader's place, taken by the lease that sent
    send_path.assert_counts_add_up(alert_id)


def test_without_a_bound_a_batch_waits_for_its_tokens_as_before(send_path: SendPath) -> None:
    _tokens, _alert_id, batch_id = send_path.one_batch("single", 3)
    monotonic = Monotonic()
    bucket = LocalTokenBucket(600, clock=monotonic, sleep=monotonic.sleep)
    bucket.reserve(60)
    sender = FakeSender()

    result = send_path.send(batch_id, sender, limiter=bucket)  # one app: no max_wait

    assert result.state == "done" and len(sender.sent_tokens) == 3
    assert monotonic.slept and monotonic.slept[0] > MAX_IN_TASK_WAIT_SECONDS
