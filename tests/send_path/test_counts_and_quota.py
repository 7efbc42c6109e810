"""Counts that add up, metrics that match them, the local quota limiter, and a bounded cost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, update

from notifier.core.db import transaction
from notifier.core.models import Alert, Delivery, Device
from notifier.pipeline import planner
from notifier.pipeline.quota import LocalTokenBucket
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import FakeSender, Reply, fatal, prune, retry


def _mixed_script(tokens: list[str]) -> dict[str, Reply]:
    """One of each failure; the rest are accepted."""
    return {
        tokens[0]: prune("UNREGISTERED"),
        tokens[1]: fatal("THIRD_PARTY_AUTH_ERROR"),
        tokens[2]: retry("UNAVAILABLE", after=10),
    }


def test_counts_add_up_after_a_batch_with_every_kind_of_outcome(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("mixed", 4)

    result = send_path.send(batch_id, FakeSender(script=_mixed_script(tokens)))

    assert result.counts == {"sent": 1, "pruned": 1, "failed": 1, "retry": 1}
    alert = send_path.alert(alert_id)
    assert (alert.audience, alert.sent, alert.pruned, alert.failed) == (4, 1, 1, 1)
    assert alert.first_send_at == alert.last_send_at == send_path.clock()
    send_path.assert_counts_add_up(alert_id)


def test_metrics_count_each_outcome_of_a_batch(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("metrics", 4)

    send_path.send(batch_id, FakeSender(script=_mixed_script(tokens)))

    assert send_path.counter("notifier_sends_total") == 4
    assert send_path.counter("notifier_tokens_pruned_total") == 1
    assert send_path.counter("notifier_fcm_request_seconds_count") == 4
    assert send_path.counter("notifier_delivery_latency_seconds_count") == 1
    send_path.assert_counts_add_up(alert_id)


def test_the_local_quota_limiter_bounds_each_send_and_waits_for_tokens(
    send_path: SendPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "PAGE_SIZE", 12)
    tokens, alert_id, batch_id = send_path.one_batch("quota", 12)
    limiter = LocalTokenBucket(per_minute=2000)  # at most 10 at once, then ~32 a second
    sender = FakeSender()
    started = time.monotonic()

    result = send_path.send(batch_id, sender, limiter=limiter)

    elapsed = time.monotonic() - started
    assert result.state == "done"
    assert sender.chunk_sizes == [10, 2]
    assert sender.sent_tokens == tokens
    # The first 10 use the bucket's burst; the last 2 wait for 2 tokens at ~32 a second.
    assert elapsed >= 0.06
    assert send_path.counter("notifier_rate_limit_waits_total") == 1
    assert send_path.counter("notifier_rate_limit_wait_seconds_total") >= 0.06
    send_path.assert_counts_add_up(alert_id)


@contextmanager
def _statements(send_path: SendPath) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(send_path.runtime.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(send_path.runtime.engine, "before_cursor_execute", count)


def test_sending_a_batch_costs_the_same_statements_whatever_its_size(
    send_path: SendPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "PAGE_SIZE", 40)
    small = send_path.add_devices("small", 4, topics=("world",))
    large = send_path.add_devices("large", 40, topics=("israel",))
    small_alert = send_path.new_alert(topics=("world",))
    large_alert = send_path.new_alert(topics=("israel",))
    [small_batch] = send_path.plan(small_alert)
    [large_batch] = send_path.plan(large_alert)
    script = {**_mixed_script(small), **_mixed_script(large)}

    with _statements(send_path) as for_small:
        send_path.send(small_batch, FakeSender(script=script))
    with _statements(send_path) as for_large:
        send_path.send(large_batch, FakeSender(script=script))

    assert len(for_small) == len(for_large)
    send_path.assert_counts_add_up(small_alert)
    send_path.assert_counts_add_up(large_alert)


def test_a_delivery_settled_elsewhere_during_the_send_is_not_counted_again(
    send_path: SendPath,
) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("settled", 3)

    def settle_one_device() -> None:
        # Whatever else ends a pending delivery moves it and its counter in one transaction.
        with transaction(send_path.runtime.sessions) as session:
            device_id = session.scalar(select(Device.id).where(Device.token == tokens[1]))
            session.execute(
                update(Delivery)
                .where(Delivery.alert_id == alert_id, Delivery.device_id == device_id)
                .values(status="failed", error_code="expired")
            )
            session.execute(
                update(Alert).where(Alert.id == alert_id).values(failed=Alert.failed + 1)
            )

    result = send_path.send(batch_id, FakeSender(during_send=settle_one_device))

    assert result.counts["sent"] == 2
    assert send_path.deliveries(alert_id)[tokens[1]].error_code == "expired"
    assert send_path.statuses(alert_id) == {"sent": 2, "failed": 1}
    send_path.assert_counts_add_up(alert_id)
