"""Editors steer alerts on the real pipeline: hold, cancel, test sends, and the shared quota."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func, select

from notifier.core.models import Batch
from tests.pipeline.conftest import Stack, subscribe, subscribe_many


def auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.editor_key}"}


def test_cancelling_in_the_hold_window_sends_nothing(stack: Stack) -> None:
    subscribe_many(stack, "hold", 50, ["israel"])
    stack.start_worker()
    alert_id = stack.post_alert(hold_seconds=3)["id"]
    time.sleep(1)
    assert (
        stack.client.post(f"/v1/alerts/{alert_id}/cancel", headers=auth(stack)).status_code == 200
    )
    time.sleep(4)  # past the end of the hold, when it would have gone out
    stack.sweep()
    view = stack.alert(alert_id)
    assert view["status"] == "cancelled"
    assert view["counts"]["audience"] == 0
    assert stack.emulator.messages() == []


def test_the_hold_window_delays_the_send_until_it_ends(stack: Stack) -> None:
    tokens = subscribe_many(stack, "held", 10, ["israel"])
    stack.start_worker()
    started = time.time()
    alert_id = stack.post_alert(hold_seconds=2)["id"]
    stack.wait_for_status(alert_id)
    arrivals = [m["received_at"] for m in stack.emulator.messages()]
    assert min(arrivals) >= started + 2
    assert sorted(stack.emulator.tokens()) == sorted(tokens)


def test_cancelling_mid_fanout_stops_the_remaining_batches(stack: Stack) -> None:
    subscribe_many(stack, "mid", 3000, ["israel"])
    stack.emulator.faults(latency_ms=200)
    stack.start_worker(concurrency=1)
    alert_id = stack.post_alert()["id"]
    deadline = time.monotonic() + 30
    while not stack.emulator.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    cancelled = stack.client.post(f"/v1/alerts/{alert_id}/cancel", headers=auth(stack)).json
    assert cancelled["status"] == "cancelled"
    stack.emulator.faults()
    time.sleep(3)
    view = stack.alert(alert_id)
    counts = view["counts"]
    assert counts["cancelled"] > 0
    assert counts["sent"] < 3000
    assert (
        counts["audience"]
        == counts["sent"]
        + counts["failed"]
        + counts["pruned"]
        + counts["cancelled"]
        + counts["pending"]
    )
    assert len(stack.emulator.messages()) == counts["sent"]  # nothing went out after the cancel
    with stack.runtime.sessions() as session:
        sending = session.scalar(select(func.count()).where(Batch.status == "sending"))
    assert sending == 0


def test_a_test_send_reaches_only_the_editors_test_devices(stack: Stack) -> None:
    subscribe_many(stack, "public", 20, ["israel"])
    stack.client.post(
        "/v1/test-devices",
        json={"token": "editor-pixel-0001", "platform": "android"},
        headers=auth(stack),
    )
    stack.client.post(
        "/v1/test-devices",
        json={"token": "editor-iphone-0001", "platform": "ios"},
        headers=auth(stack),
    )
    stack.start_worker()
    held = stack.post_alert(hold_seconds=600)["id"]
    test = stack.client.post(f"/v1/alerts/{held}/test", headers=auth(stack)).json
    stack.wait_for_status(test["id"])
    assert sorted(stack.emulator.tokens()) == ["editor-iphone-0001", "editor-pixel-0001"]
    assert stack.alert(held)["status"] == "scheduled"


def test_the_shared_rate_limit_holds_across_two_worker_processes(stack_factory) -> None:
    stack = stack_factory(fcm_quota_per_minute="600")  # ~10 sends a second for the whole fleet
    for prefix in ("a", "b", "c", "d"):
        subscribe_many(stack, f"rate{prefix}", 15, ["israel"])
    stack.start_worker(concurrency=1)
    stack.start_worker(concurrency=1)
    alerts = [stack.post_alert(headline=f"Rate {i}")["id"] for i in range(2)]
    for alert_id in alerts:
        stack.wait_for_status(alert_id, timeout=90)
    arrivals = sorted(m["received_at"] for m in stack.emulator.messages())
    assert len(arrivals) == 120
    # A burst of 3, then ~9.6/s (pipeline/quota.py bucket_shape): 120 sends need over 12 s.
    assert arrivals[-1] - arrivals[0] >= 10.5
    # Over any four seconds: four seconds' worth plus the burst. (Arrival times are taken by the
    # emulator, which a busy machine may pause, so finer windows would measure the scheduler.)
    for i, start in enumerate(arrivals):
        window = [t for t in arrivals[i:] if t < start + 4.0]
        assert len(window) <= 10 * 4 + 10 + 5
    logs = stack.worker_logs()
    assert logs.count("notifier.send_batch") >= 2


def test_sigterm_during_a_deploy_requeues_in_flight_work(stack: Stack) -> None:
    tokens = subscribe_many(stack, "term", 2000, ["israel"])
    stack.emulator.faults(latency_ms=100)
    worker = stack.start_worker(concurrency=1)
    alert_id = stack.post_alert()["id"]
    deadline = time.monotonic() + 30
    while not stack.emulator.messages() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGTERM)  # a deploy: warm shutdown, then the new version
    worker.wait(timeout=60)
    stack.emulator.faults()
    stack.start_worker()
    view = stack.wait_for_status(alert_id, sweeping=True, timeout=90)
    assert view["counts"]["sent"] == 2000 and view["counts"]["pending"] == 0
    assert set(stack.emulator.tokens()) == set(tokens)


def test_when_the_beat_was_down_the_backlog_drains_once_it_returns(stack: Stack) -> None:
    tokens = subscribe_many(stack, "beat", 10, ["israel"])
    broken_publisher = stack.runtime.publisher

    class Lost:
        def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
            """The trigger is lost on its way to the broker."""

    stack.runtime.publisher = Lost()
    alert_id = stack.post_alert()["id"]
    stack.runtime.publisher = broken_publisher
    stack.start_worker()
    time.sleep(2.5)
    metrics = stack.client.get("/metrics").get_data(as_text=True)
    pending_age = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("notifier_oldest_pending_seconds ")
    )
    assert pending_age >= 2.0  # ops can see work waiting while no sweeper runs

    beat = subprocess.Popen(
        [sys.executable, "-m", "notifier", "beat", "--loglevel", "INFO"],
        env={**stack.env, "NOTIFIER_SWEEP_INTERVAL_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        view = stack.wait_for_status(alert_id, timeout=60)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)
    assert view["status"] == "sent"
    assert Counter(stack.emulator.tokens()) == Counter(tokens)


def test_subscribing_after_planning_does_not_change_a_planned_audience(stack: Stack) -> None:
    subscribe_many(stack, "plan", 10, ["israel"])
    stack.start_worker()
    alert_id = stack.post_alert()["id"]
    view = stack.wait_for_status(alert_id)
    subscribe(stack, "latecomer-device-0001", ["israel"])
    assert stack.alert(alert_id)["counts"] == view["counts"]
