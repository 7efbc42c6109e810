"""Prometheus exposition of notifier's metrics: stored counters plus gauges read at scrape time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.core.counters import read_counters
from notifier.core.models import Alert, Device
from notifier.core.vocabulary import AlertStatus
from notifier.observability.ops_view import alerts_by_status, oldest_pending_age
from notifier.observability.queues import BrokerState

HELP = {
    "notifier_webhook_requests_total": "Webhook deliveries on /v1/events by result.",
    "notifier_sends_total": "Device sends by outcome and FCM error code.",
    "notifier_tokens_pruned_total": "Device tokens pruned, by FCM reason.",
    "notifier_suppressed_total": "Devices not sent by their reader's preferences, by reason.",
    "notifier_silent_sends_total": "Devices sent silently (in their reader's quiet hours).",
    "notifier_rate_limit_waits_total": "Times a sender waited for the shared FCM quota.",
    "notifier_rate_limit_wait_seconds_total": "Seconds senders waited for the shared FCM quota.",
    "notifier_fcm_request_seconds": "Latency of FCM send requests.",
    "notifier_delivery_latency_seconds": "From an event's arrival to FCM accepting a device.",
    "notifier_app_sends_total": "Send attempts per app by FCM's answer (accepted, retry, ...).",
    "notifier_app_quota_wait_seconds_total": "Seconds senders waited for an app's FCM quota.",
    "notifier_app_quota_deferrals_total": "Batches given back to wait for an app's FCM quota.",
}
HISTOGRAMS = ("notifier_fcm_request_seconds", "notifier_delivery_latency_seconds")


def _parse_labels(labels: str) -> dict[str, str]:
    result = {}
    for part in filter(None, labels.split('",')):
        key, _, value = part.partition('="')
        result[key] = value.rstrip('"').replace('\\"', '"').replace("\\\\", "\\")
    return result


class _Snapshot:
    """A one-off collector over values read for this scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def stored_metrics(rows: list[tuple[str, str, float]]) -> list[Metric]:
    counters: dict[str, CounterMetricFamily] = {}
    histograms: dict[str, dict[str, object]] = defaultdict(lambda: {"buckets": {}, "sum": 0.0})
    for metric, labels, value in rows:
        base = next((h for h in HISTOGRAMS if metric.startswith(h + "_")), None)
        if base is not None:
            entry = histograms[base]
            suffix = metric[len(base) + 1 :]
            if suffix == "bucket":
                entry["buckets"][_parse_labels(labels)["le"]] = value  # type: ignore[index]
            elif suffix == "sum":
                entry["sum"] = value
            continue
        label_map = _parse_labels(labels)
        name = metric.removesuffix("_total")
        family = counters.get(name)
        if family is None:
            family = CounterMetricFamily(name, HELP.get(metric, metric), labels=sorted(label_map))
            counters[name] = family
        family.add_metric([label_map[k] for k in sorted(label_map)], value)
    result: list[Metric] = list(counters.values())
    for name, entry in histograms.items():
        per_bucket: dict[str, float] = entry["buckets"]  # type: ignore[assignment]
        bounds = sorted((b for b in per_bucket if b != "+Inf"), key=float)
        cumulative, buckets = 0.0, []
        for bound in [*bounds, "+Inf"]:
            cumulative += per_bucket.get(bound, 0.0)
            buckets.append((bound, cumulative))
        histogram = HistogramMetricFamily(name, HELP.get(name, name))
        histogram.add_metric([], buckets, sum_value=float(entry["sum"]))  # type: ignore[arg-type]
        result.append(histogram)
    return result


def live_gauges(session: Session, broker: BrokerState, now: datetime) -> list[Metric]:
    alerts = GaugeMetricFamily("notifier_alerts", "Alerts by status.", labels=["status"])
    counts = alerts_by_status(session)
    for status in AlertStatus:
        alerts.add_metric([status.value], counts.get(status, 0))
    depth = GaugeMetricFamily(
        "notifier_queue_depth", "Messages waiting per queue.", labels=["queue"]
    )
    age = GaugeMetricFamily(
        "notifier_queue_oldest_age_seconds", "Age of the oldest waiting message.", labels=["queue"]
    )
    for queue in broker.queues:
        if queue.depth is not None:
            depth.add_metric([queue.name], queue.depth)
        if queue.oldest_age_seconds is not None:
            age.add_metric([queue.name], queue.oldest_age_seconds)
    pending = GaugeMetricFamily(
        "notifier_oldest_pending_seconds",
        "How long the oldest due alert or batch has waited to be worked on.",
        value=oldest_pending_age(session, now),
    )
    devices = GaugeMetricFamily(
        "notifier_devices", "Registered devices by state.", labels=["state"]
    )
    app_devices = GaugeMetricFamily(
        "notifier_app_devices", "Registered devices per app and state.", labels=["app", "state"]
    )
    # One scan for both gauges: per app and state, summed per state.
    per_state: dict[str, int] = defaultdict(int)
    for app, state, count in session.execute(
        select(Device.app, Device.state, func.count()).group_by(Device.app, Device.state)
    ):
        app_devices.add_metric([app, state], count)
        per_state[state] += count
    for state_name, total in per_state.items():
        devices.add_metric([state_name], total)
    opens = CounterMetricFamily(
        "notifier_alert_opens",
        "Notification opens recorded.",
        value=session.scalar(select(func.coalesce(func.sum(Alert.opens), 0))) or 0,
    )
    broker_up = GaugeMetricFamily(
        "notifier_broker_up",
        "1 when the broker answered this scrape.",
        value=0 if broker.error else 1,
    )
    return [alerts, depth, age, pending, devices, app_devices, opens, broker_up]


def render(session: Session, broker: BrokerState, now: datetime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    metrics = stored_metrics(read_counters(session)) + live_gauges(session, broker, now)
    registry.register(_Snapshot(metrics))
    return generate_latest(registry)
