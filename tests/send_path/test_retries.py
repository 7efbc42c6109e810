"""Retries: wait at least what FCM asks, back off with jitter, give up at max attempts or TTL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.fcm.outcomes import QUOTA_MIN_RETRY_AFTER
from notifier.pipeline.send import BatchResult
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import FakeSender, accept, fcm_error, retry


def _send_until_finished(
    send_path: SendPath, batch_id: int, sender: FakeSender, max_attempts: int
) -> list[BatchResult]:
    """Send the batch again each time its retry is due, as the retry message would."""
    results = [send_path.send(batch_id, sender, max_attempts=max_attempts)]
    while results[-1].state == "retry":
        assert results[-1].retry_in is not None
        send_path.clock.advance(results[-1].retry_in)
        results.append(send_path.send(batch_id, sender, max_attempts=max_attempts))
        assert len(results) <= max_attempts
    return results


def test_a_retry_waits_as_long_as_retry_after_asks(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("wait", 3)
    sender = FakeSender(script={tokens[1]: retry("UNAVAILABLE", after=30)})

    result = send_path.send(batch_id, sender)

    assert result.state == "retry"
    assert result.retry_in == 30.0
    batch = send_path.batch(batch_id)
    assert batch.status == "retry_wait"
    assert batch.next_attempt_at == send_path.clock() + timedelta(seconds=30)
    assert send_path.statuses(alert_id) == {"sent": 2, "pending": 1}
    assert send_path.deliveries(alert_id)[tokens[1]].status == "pending"
    send_path.assert_counts_add_up(alert_id)


def test_quota_exceeded_waits_at_least_a_minute_whatever_fcm_asks(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("quota", 2)
    sender = FakeSender(script={tokens[0]: fcm_error("QUOTA_EXCEEDED", retry_after=5)})

    result = send_path.send(batch_id, sender)

    assert result.state == "retry"
    assert result.retry_in == QUOTA_MIN_RETRY_AFTER
    send_path.assert_counts_add_up(alert_id)


def test_a_retry_without_retry_after_backs_off_exponentially_with_jitter(
    send_path: SendPath,
) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("backoff", 1)
    flaky = [retry("INTERNAL")] * 4 + [accept()]
    sender = FakeSender(script={tokens[0]: flaky})

    results = _send_until_finished(send_path, batch_id, sender, max_attempts=10)

    waits = [r.retry_in for r in results[:-1]]
    assert len(waits) == 4
    for attempt, wait in enumerate(waits, start=1):
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert wait is not None and ceiling / 2 <= wait <= ceiling, (attempt, wait)
    assert results[-1].state == "done"
    assert send_path.deliveries(alert_id)[tokens[0]].status == "sent"
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_redelivered_before_its_retry_is_due_is_not_sent(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("early", 2)
    sender = FakeSender(script={tokens[0]: retry(after=30)})
    send_path.send(batch_id, sender)
    send_path.clock.advance(10)

    result = send_path.send(batch_id, sender)

    assert result.state == "not_due"
    assert result.retry_in == pytest.approx(20.0)
    assert len(sender.requests) == 1
    send_path.assert_counts_add_up(alert_id)


def test_a_due_retry_sends_only_the_devices_still_pending(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("due", 4)
    send_path.send(batch_id, FakeSender(script={tokens[2]: retry(after=30)}))
    send_path.clock.advance(30)
    second = FakeSender()

    result = send_path.send(batch_id, second)

    assert result.state == "done"
    assert second.sent_tokens == [tokens[2]]
    assert send_path.deliveries(alert_id)[tokens[2]].attempts == 2
    assert send_path.statuses(alert_id) == {"sent": 4}
    assert send_path.alert(alert_id).status == "sent"
    send_path.assert_counts_add_up(alert_id)


def test_a_device_gives_up_at_max_attempts_with_a_reason(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("stubborn", 3)
    sender = FakeSender(script={tokens[0]: retry("UNAVAILABLE")})

    results = _send_until_finished(send_path, batch_id, sender, max_attempts=3)

    assert [r.state for r in results] == ["retry", "retry", "done"]
    assert sender.sent_tokens.count(tokens[0]) == 3
    assert results[-1].counts["failed"] == 1  # the give-up is counted where the batch ends
    gave_up = send_path.deliveries(alert_id)[tokens[0]]
    assert (gave_up.status, gave_up.error_code) == ("failed", "UNAVAILABLE:gave_up")
    assert gave_up.attempts == 3  # one per send, the last not counted twice
    assert send_path.statuses(alert_id) == {"sent": 2, "failed": 1}
    assert send_path.alert(alert_id).status == "sent"
    assert send_path.batch(batch_id).status == "done"
    send_path.assert_counts_add_up(alert_id)


def test_a_device_gives_up_when_its_retry_would_come_after_the_ttl(send_path: SendPath) -> None:
    tokens = send_path.add_devices("late", 2)
    alert_id = send_path.new_alert(ttl=60)
    [batch_id] = send_path.plan(alert_id)
    sender = FakeSender(script={tokens[1]: retry("UNAVAILABLE", after=120)})

    result = send_path.send(batch_id, sender)

    assert result.state == "done"
    assert result.retry_in is None
    gave_up = send_path.deliveries(alert_id)[tokens[1]]
    assert (gave_up.status, gave_up.error_code) == ("failed", "UNAVAILABLE:gave_up")
    assert send_path.statuses(alert_id) == {"sent": 1, "failed": 1}
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_of_an_alert_past_its_ttl_is_not_sent_late(send_path: SendPath) -> None:
    send_path.add_devices("stale", 2)
    alert_id = send_path.new_alert(ttl=60)
    [batch_id] = send_path.plan(alert_id)
    send_path.clock.advance(61)
    sender = FakeSender()

    result = send_path.send(batch_id, sender)

    assert result.state == "expired"
    assert sender.requests == []
    # Left pending for the sweeper, which expires the alert and fails them with a reason.
    assert send_path.statuses(alert_id) == {"pending": 2}
    send_path.assert_counts_add_up(alert_id)
