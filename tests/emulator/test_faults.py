"""Fault injection: rates of 503/500/429 answers, a Retry-After, and added latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.emulator.helpers import a_message, fcm_error


def _faults(emulator: str, **faults: Any) -> requests.Response:
    return requests.post(f"{emulator}/emulator/faults", json=faults, timeout=5)


@pytest.mark.parametrize(
    ("fault", "http_status", "code"),
    [
        ("unavailable_rate", 503, "UNAVAILABLE"),
        ("internal_rate", 500, "INTERNAL"),
        ("quota_rate", 429, "QUOTA_EXCEEDED"),
    ],
)
def test_rate_of_one_fails_every_send_with_that_error(
    emulator: str, send: Callable[..., requests.Response], fault: str, http_status: int, code: str
) -> None:
    assert _faults(emulator, **{fault: 1.0}).status_code == 200
    responses = [send({"message": a_message()}) for _ in range(5)]
    assert {r.status_code for r in responses} == {http_status}
    assert fcm_error(responses[0])[1] == code


def test_quota_exceeded_carries_a_minute_of_retry_after_by_default(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    _faults(emulator, quota_rate=1.0)
    assert send({"message": a_message()}).headers["Retry-After"] == "60"


def test_configured_retry_after_is_sent(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    _faults(emulator, unavailable_rate=1.0, retry_after_seconds=7)
    assert send({"message": a_message()}).headers["Retry-After"] == "7"


def test_partial_rate_fails_some_sends(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    _faults(emulator, unavailable_rate=0.5)
    statuses = [send({"message": a_message()}).status_code for _ in range(60)]
    assert 0 < statuses.count(503) < 60


def test_empty_faults_clear_them(emulator: str, send: Callable[..., requests.Response]) -> None:
    _faults(emulator, unavailable_rate=1.0)
    _faults(emulator)
    assert send({"message": a_message()}).status_code == 200


def test_latency_delays_every_answer(emulator: str, send: Callable[..., requests.Response]) -> None:
    _faults(emulator, latency_ms=300)
    started = time.perf_counter()
    send({"message": a_message()})
    assert time.perf_counter() - started >= 0.3


@pytest.mark.parametrize(
    "faults",
    [
        {"unavailable_rate": 2},
        {"quota_rate": -0.1},
        {"latency": 5},
        {"retry_after_seconds": "soon"},
    ],
)
def test_malformed_faults_are_refused(emulator: str, faults: dict[str, object]) -> None:
    assert _faults(emulator, **faults).status_code == 400
