"""The shared quota keeps the whole fleet under FCM's rolling minute: no 429, ever.

First on simulated time (the bucket's arithmetic against a rolling 60 s counter, with workers
joining and sends arriving late), then on the real pipeline against an emulator enforcing the
same quota.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable

import pytest

from notifier.pipeline import quota
from notifier.pipeline.quota import BucketShape, LocalTokenBucket, bucket_shape
from tests.pipeline.conftest import Stack, subscribe_many

BATCH = 500  # the planner's page: a send task never asks for more than this at once


class SimulatedTime:
    """The clock the simulated bucket reads; the simulation moves it from event to event."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate_fleet(
    per_minute: int,
    *,
    seconds: float,
    senders: int = 4,
    joiners: int = 2,
    join_at: float = 30.0,
    per_sender_rate: float = 4000.0,
    seed: int = 12,
) -> list[float]:
    """FCM's arrival times for a fleet that always has more to send than the quota allows.

    ``senders`` loops start at once, ``joiners`` more at ``join_at``. Each reserves a chunk
    (at most the bucket's ``max_chunk`` and a batch), waits what the bucket says, then sends the
    chunk at ``per_sender_rate``; every chunk reaches FCM late by a random delay, as a busy
    machine would deliver it, so chunks from different senders bunch up. Delay plus sending
    time stay within the delay the bucket's shape allows for.
    """
    clock = SimulatedTime()
    bucket = LocalTokenBucket(per_minute, clock=clock, sleep=lambda _: None)
    chunk = min(bucket.max_chunk, BATCH)
    rng = random.Random(seed)
    send_seconds = chunk / per_sender_rate
    max_delay = quota.SEND_DELAY_ALLOWANCE_SECONDS - send_seconds
    assert max_delay > 0
    ready = [(0.0, i) for i in range(senders)] + [(join_at, senders + i) for i in range(joiners)]
    heapq.heapify(ready)
    arrivals: list[float] = []
    while ready:
        clock.now, sender = heapq.heappop(ready)
        if clock.now >= seconds:
            continue
        granted = clock.now + bucket.reserve(chunk)
        late = rng.uniform(0, max_delay)
        step = send_seconds / chunk
        arrivals.extend(granted + late + step * k for k in range(chunk))
        heapq.heappush(ready, (granted + send_seconds, sender))
    arrivals.sort()
    return arrivals


def busiest_minute(arrivals: list[float]) -> int:
    """The most arrivals in any 60 s window [t, t + 60), wherever it starts."""
    most = start = 0
    for end, t in enumerate(arrivals):
        while t - arrivals[start] >= 60.0:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("per_minute", [60, 600, 120_000, 600_000])
def test_a_full_bucket_and_its_refill_never_exceed_the_quota_in_any_rolling_minute(
    per_minute: int,
) -> None:
    arrivals = simulate_fleet(per_minute, seconds=150)

    most = busiest_minute(arrivals)

    assert most <= per_minute
    # ... while using the quota: the steady rate is 96.3% of it, the busiest minute more.
    assert most >= 0.95 * per_minute


def test_the_shape_adds_burst_and_a_minute_of_refill_plus_delay_up_to_the_quota() -> None:
    for per_minute in (2, 7, 600, 120_000, 600_000, 10_000_000):
        capacity, rate = bucket_shape(per_minute)
        window = 60 + quota.SEND_DELAY_ALLOWANCE_SECONDS
        assert capacity >= 1 and rate > 0
        assert capacity + rate * window <= per_minute * (1 + 1e-9)


def test_a_bucket_of_one_second_of_burst_at_the_average_rate_would_cross_the_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The check above can fail: the naive shape (what the bucket used to be) is caught by it.
    monkeypatch.setattr(quota, "bucket_shape", lambda n: BucketShape(n / 60, n / 60))

    assert busiest_minute(simulate_fleet(120_000, seconds=150)) > 120_000


# --- The real pipeline -------------------------------------------------------------------------

# Per minute, for the emulator and for notifier alike: 50 sends a second, so that a fan-out of
# more than a minute's quota (which a bucket overshooting its minute would get 429s for) spans
# several batches of 500 per alert and a joining worker finds work left, in about 70 s.
QUOTA = 3000
AUDIENCE = 1650  # per alert: four batches each, 3,300 sends in all


def test_two_alerts_and_a_worker_joining_mid_fan_out_cause_no_429_at_the_quota(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(fcm_quota_per_minute=str(QUOTA))
    first = subscribe_many(stack, "quota-a", AUDIENCE, ["israel"])
    second = subscribe_many(stack, "quota-b", AUDIENCE, ["world"])
    stack.emulator.quota(QUOTA)
    # The emulator's outcome counters run for its whole life (earlier tests inject quota faults).
    refused_before = stack.emulator.stats()["outcomes"].get("QUOTA_EXCEEDED", 0)
    try:
        stack.start_worker(concurrency=2)
        alerts = [
            stack.post_alert(headline="Quota one", topics=["israel"])["id"],
            stack.post_alert(headline="Quota two", topics=["world"])["id"],
        ]
        deadline = time.monotonic() + 60
        while len(stack.emulator.messages()) < QUOTA // 4 and time.monotonic() < deadline:
            time.sleep(0.5)
        joiner = stack.start_worker(concurrency=2)  # joins a quarter of a minute in
        views = [stack.wait_for_status(alert_id, timeout=180) for alert_id in alerts]
        stats = stack.emulator.stats()
        arrivals = sorted(m["received_at"] for m in stack.emulator.messages())
    finally:
        stack.emulator.quota(None)

    assert [v["status"] for v in views] == ["sent", "sent"]
    assert [v["counts"]["sent"] for v in views] == [AUDIENCE, AUDIENCE]
    assert stats["outcomes"].get("QUOTA_EXCEEDED", 0) == refused_before
    assert busiest_minute(arrivals) <= QUOTA
    assert sorted(stack.emulator.tokens()) == sorted(first + second)
    joiner_log = (stack.tmp / f"worker-{stack.workers.index(joiner)}.log").read_text()
    assert "notifier.send_batch" in joiner_log
