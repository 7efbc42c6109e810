"""Ops see the pipeline as it runs: /metrics values move, the queue view tells depth and age."""

from __future__ import annotations

import re
import time

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from tests.pipeline.conftest import Stack, subscribe, subscribe_many


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^([a-z_]+)(\{(.*)\})? ([0-9.e+-]+|NaN)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if found == labels:
            return float(match.group(4))
    return 0.0


def ops_key(stack: Stack) -> str:
    with transaction(stack.runtime.sessions) as session:
        key, _ = create_key(session, "ops", "observability test")
    return key


def test_metrics_follow_the_pipeline(stack: Stack) -> None:
    subscribe_many(stack, "met", 30, ["israel"])
    subscribe(stack, "unregistered-metrics01", ["israel"])
    before = stack.client.get("/metrics").get_data(as_text=True)
    assert metric(before, "notifier_sends_total", code="", outcome="accepted") == 0

    stack.start_worker()
    stack.wait_for_status(stack.post_alert()["id"])
    after = stack.client.get("/metrics").get_data(as_text=True)

    assert metric(after, "notifier_sends_total", code="", outcome="accepted") == 30
    assert metric(after, "notifier_sends_total", code="UNREGISTERED", outcome="pruned") == 1
    assert metric(after, "notifier_tokens_pruned_total", reason="UNREGISTERED") == 1
    assert metric(after, "notifier_alerts", status="sent") == 1
    assert metric(after, "notifier_fcm_request_seconds_count") == 31
    assert metric(after, "notifier_delivery_latency_seconds_count") == 30
    assert metric(after, "notifier_delivery_latency_seconds_bucket", le="+Inf") == 30
    assert metric(after, "notifier_queue_depth", queue="breaking") == 0
    assert metric(after, "notifier_broker_up") == 1
    assert "unregistered-metrics01" not in after  # no tokens in labels


def test_queue_view_shows_waiting_work_and_its_age(stack: Stack) -> None:
    subscribe_many(stack, "q", 10, ["israel"])
    key = ops_key(stack)
    alert_id = stack.post_alert()["id"]  # no worker yet: the plan trigger waits in its queue
    time.sleep(1.2)
    view = stack.client.get("/v1/ops/queues", headers={"Authorization": f"Bearer {key}"}).json
    planner = next(q for q in view["queues"] if q["name"] == "planner")
    assert planner["depth"] == 1
    assert planner["oldest_age_seconds"] >= 1.0
    assert view["oldest_pending_age_seconds"] >= 1.0
    assert view["workers"] == []

    stack.start_worker()
    stack.wait_for_status(alert_id)
    stack.sweep()
    view = stack.client.get("/v1/ops/queues", headers={"Authorization": f"Bearer {key}"}).json
    assert all(q["depth"] == 0 for q in view["queues"])
    assert view["sweeper"]["age_seconds"] < 5
    assert view["alerts_by_status"] == {"sent": 1}
    assert [w["name"] for w in view["workers"]]  # the running worker answers


def test_throughput_counts_outcomes_per_minute(stack: Stack) -> None:
    subscribe_many(stack, "tp", 25, ["israel"])
    stack.start_worker()
    stack.wait_for_status(stack.post_alert()["id"])
    key = ops_key(stack)
    minutes = stack.client.get(
        "/v1/ops/throughput?minutes=5", headers={"Authorization": f"Bearer {key}"}
    ).json["minutes"]
    assert len(minutes) == 5
    assert sum(m["sent"] for m in minutes) == 25


def test_webhook_results_are_counted(stack_factory) -> None:
    stack = stack_factory(webhook_secrets="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    stack.client.post("/v1/events", data=b"{}", content_type="application/json")
    text = stack.client.get("/metrics").get_data(as_text=True)
    assert metric(text, "notifier_webhook_requests_total", result="rejected_401") == 1
