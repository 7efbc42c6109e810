"""The pure steps of recording: sorting outcomes and deciding when (or whether) to retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.fcm.types import Accepted, Fatal, Prune, Retry
from notifier.pipeline.record import BACKOFF_CAP, backoff, classify, decide_retry

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
IN_AN_HOUR = NOW + timedelta(hours=1)


def test_classify_groups_ended_devices_by_status_and_code_in_answer_order() -> None:
    outcomes = [
        Accepted(1, "projects/p/messages/1"),
        Prune(2, "UNREGISTERED"),
        Fatal(3, "THIRD_PARTY_AUTH_ERROR"),
        Retry(4, "UNAVAILABLE", 3.0),
        Prune(5, "SENDER_ID_MISMATCH"),
        Prune(6, "UNREGISTERED"),
    ]

    classified = classify(outcomes)

    assert [a.device_id for a in classified.accepted] == [1]
    assert classified.ended == {
        ("pruned", "UNREGISTERED"): [2, 6],
        ("failed", "THIRD_PARTY_AUTH_ERROR"): [3],
        ("pruned", "SENDER_ID_MISMATCH"): [5],
    }
    assert classified.retries == [Retry(4, "UNAVAILABLE", 3.0)]


def test_a_retry_waits_for_the_longest_retry_after_in_the_batch() -> None:
    retries = [Retry(1, "UNAVAILABLE", 20.0), Retry(2, "QUOTA_EXCEEDED", 90.0), Retry(3, "x")]

    decision = decide_retry(1, retries, max_attempts=5, now=NOW, expires_at=IN_AN_HOUR)

    assert decision.delay == 90.0
    assert not decision.give_up


def test_a_retry_gives_up_at_max_attempts() -> None:
    decision = decide_retry(
        5, [Retry(1, "UNAVAILABLE")], max_attempts=5, now=NOW, expires_at=IN_AN_HOUR
    )

    assert decision.give_up


def test_a_retry_that_would_land_at_the_ttl_gives_up() -> None:
    expires_at = NOW + timedelta(seconds=60)

    decision = decide_retry(
        1, [Retry(1, "UNAVAILABLE", 60.0)], max_attempts=5, now=NOW, expires_at=expires_at
    )

    assert decision.give_up


def test_backoff_stays_within_its_cap_with_jitter() -> None:
    waits = [backoff(30, None) for _ in range(50)]

    assert all(BACKOFF_CAP / 2 <= wait <= BACKOFF_CAP for wait in waits)
    assert len(set(waits)) > 1
