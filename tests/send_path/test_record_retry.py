"""A sent batch keeps trying to record FCM's answers while PostgreSQL is unreachable (fault 10).

Losing the recording would leave the batch to the sweeper once its lease expires, and every
device of it would be sent a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from notifier.pipeline.send import BatchResult, record_while_leased

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def database_down_for(attempts: int) -> tuple[list[int], Callable[[], BatchResult]]:
    calls: list[int] = []

    def record() -> BatchResult:
        calls.append(1)
        if len(calls) <= attempts:
            raise OperationalError("UPDATE batches ...", {}, ConnectionRefusedError())
        return BatchResult(7, "done", {"sent": 500})

    return calls, record


def test_the_answers_are_recorded_once_the_database_is_back() -> None:
    clock = Clock()
    calls, record = database_down_for(3)

    result = record_while_leased(
        record,
        until=START + timedelta(seconds=60),
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.state == "done" and result.counts == {"sent": 500}
    assert len(calls) == 4
    assert clock.slept == [0.5, 1, 2]


def test_an_outage_longer_than_the_budget_is_left_to_the_sweeper() -> None:
    clock = Clock()
    calls, record = database_down_for(100)

    with pytest.raises(OperationalError):
        record_while_leased(
            record,
            until=START + timedelta(seconds=10),
            clock=clock,
            sleep=clock.sleep,
        )

    assert clock.now <= START + timedelta(seconds=10)
    assert len(calls) == len(clock.slept) + 1


def test_other_database_errors_are_not_retried() -> None:
    clock = Clock()

    def record() -> BatchResult:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        record_while_leased(
            record, until=START + timedelta(seconds=60), clock=clock, sleep=clock.sleep
        )
    assert clock.slept == []
