"""The emulator's FCM quota: N sends per project in any rolling 60 s, then 429 QUOTA_EXCEEDED."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from notifier.emulator import start_emulator_process, stop_emulator_process
from notifier.emulator.quota import ProjectQuota, parse_quota_body
from tests.emulator.helpers import a_message, fcm_error
from tests.emulator_fixtures import PROJECT
from tests.support import free_port, notifier_process, stop, wait_for_http


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sender:
    """Sends to one quota at chosen seconds of a fake clock, as an FCM client would."""

    def __init__(self, per_minute: int | None) -> None:
        self.clock = FakeClock()
        self.quota = ProjectQuota(per_minute, clock=self.clock)

    def at(self, second: float, project: str = "p") -> int | None:
        """Send at ``second``: None if admitted, else the Retry-After the emulator answers."""
        self.clock.now = 1000.0 + second
        return self.quota.admit(project)


# --- The rolling window, on a clock the test moves ---------------------------------------------


def test_n_sends_are_admitted_and_the_next_waits_until_the_oldest_leaves_the_minute() -> None:
    fcm = Sender(3)
    admitted = [fcm.at(0), fcm.at(10), fcm.at(20)]

    refused = fcm.at(30)

    assert admitted == [None, None, None]
    # The first send (t=0) leaves the window at t=60.001 s, 30.001 s from now: 31 whole seconds.
    assert refused == 31


def test_the_window_rolls_rather_than_restarting_on_each_clock_minute() -> None:
    fcm = Sender(3)
    assert [fcm.at(59.0), fcm.at(59.5), fcm.at(59.9)] == [None, None, None]

    # A counter reset at each clock minute would admit these two: FCM's rolling minute does not.
    assert fcm.at(60.5) == 59
    assert fcm.at(118.9) == 1
    assert fcm.at(119.1) is None  # the slot of the send at 59.0 freed at 119.001
    assert fcm.at(119.2) == 1
    assert fcm.at(119.6) is None  # the slot of the send at 59.5


def test_refused_sends_do_not_use_up_the_window() -> None:
    fcm = Sender(2)
    fcm.at(0)
    fcm.at(0)
    refusals = [fcm.at(second) for second in range(1, 60)]

    later = [fcm.at(61), fcm.at(61), fcm.at(61)]

    assert None not in refusals
    assert later == [None, None, 61]
    assert fcm.quota.to_json()["projects"]["p"] == {"in_window": 2, "refused": 60}


def test_each_project_has_a_window_of_its_own() -> None:
    fcm = Sender(1)

    assert [fcm.at(0, "a"), fcm.at(0, "b"), fcm.at(1, "a")] == [None, None, 60]
    assert fcm.quota.to_json()["projects"] == {
        "a": {"in_window": 1, "refused": 1},
        "b": {"in_window": 1, "refused": 0},
    }


def test_a_new_quota_empties_every_window_and_zero_means_none() -> None:
    fcm = Sender(1)
    fcm.at(0)
    fcm.quota.reset(1)
    assert fcm.at(1) is None
    fcm.quota.reset(0)

    assert all(fcm.at(2) is None for _ in range(1000))
    assert fcm.quota.to_json() == {"per_minute": None, "window_seconds": 60, "projects": {}}


def test_a_burst_in_one_millisecond_counts_every_send() -> None:
    fcm = Sender(10_000)

    outcomes = [fcm.at(0) for _ in range(10_001)]

    assert outcomes.count(None) == 10_000 and outcomes[-1] == 61


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"per_minute": 600}, 600), ({"per_minute": 0}, None), ({"per_minute": None}, None)],
)
def test_the_quota_body_takes_a_count_zero_or_null(body: object, expected: int | None) -> None:
    assert parse_quota_body(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"per_minute": -1},
        {"per_minute": 1.5},
        {"per_minute": "600"},
        {"per_minute": True},
        {"per_minute": 10**13},
        {"per_minute": 600, "per_second": 10},
    ],
)
def test_the_quota_body_refuses_anything_else(body: object) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        parse_quota_body(body)


# --- Over HTTP, against a real emulator process ------------------------------------------------


def _set_quota(base_url: str, per_minute: Any) -> requests.Response:
    return requests.post(f"{base_url}/emulator/quota", json={"per_minute": per_minute}, timeout=5)


def _outcomes(base_url: str) -> dict[str, int]:
    return dict(requests.get(f"{base_url}/emulator/stats", timeout=5).json()["outcomes"])


@pytest.fixture
def quota_emulator(emulator: str) -> Iterator[str]:
    """The session emulator, its quota cleared again after the test."""
    yield emulator
    _set_quota(emulator, None)


def test_over_the_quota_fcm_answers_429_quota_exceeded_with_a_retry_after(
    quota_emulator: str, send: Callable[..., requests.Response]
) -> None:
    assert _set_quota(quota_emulator, 3).status_code == 200
    before = _outcomes(quota_emulator)

    responses = [send({"message": a_message(token=f"device-{i}")}) for i in range(4)]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    refused = responses[-1]
    assert fcm_error(refused) == ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
    assert refused.json()["error"]["code"] == 429
    # The first send leaves the window about 60 s after it was made (less the time the sends
    # took on a busy machine); whole seconds, never a zero or a date.
    assert 30 <= int(refused.headers["Retry-After"]) <= 61
    after = _outcomes(quota_emulator)
    assert after["QUOTA_EXCEEDED"] - before.get("QUOTA_EXCEEDED", 0) == 1
    assert after["accepted"] - before.get("accepted", 0) == 3


def test_the_quota_and_each_projects_window_show_in_the_quota_and_the_stats(
    quota_emulator: str, send: Callable[..., requests.Response]
) -> None:
    _set_quota(quota_emulator, 2)
    for _ in range(3):
        send({"message": a_message()})

    shown = requests.get(f"{quota_emulator}/emulator/quota", timeout=5).json()

    expected = {
        "per_minute": 2,
        "window_seconds": 60,
        "projects": {PROJECT: {"in_window": 2, "refused": 1}},
    }
    assert shown == expected
    assert requests.get(f"{quota_emulator}/emulator/stats", timeout=5).json()["quota"] == expected


def test_sends_fcm_refuses_for_their_token_count_against_the_quota(
    quota_emulator: str, send: Callable[..., requests.Response]
) -> None:
    _set_quota(quota_emulator, 2)

    answers = [
        send({"message": a_message(token=t)}).status_code
        for t in ("unregistered-1", "invalid-2", "ok-3")
    ]

    assert answers == [404, 400, 429]


@pytest.mark.parametrize("cleared", [None, 0])
def test_a_quota_of_null_or_zero_lifts_it(
    quota_emulator: str, send: Callable[..., requests.Response], cleared: int | None
) -> None:
    _set_quota(quota_emulator, 1)
    send({"message": a_message()})
    assert send({"message": a_message()}).status_code == 429

    assert _set_quota(quota_emulator, cleared).json()["per_minute"] is None
    assert {send({"message": a_message()}).status_code for _ in range(5)} == {200}


def test_setting_the_quota_again_empties_the_window(
    quota_emulator: str, send: Callable[..., requests.Response]
) -> None:
    _set_quota(quota_emulator, 1)
    send({"message": a_message()})
    assert send({"message": a_message()}).status_code == 429

    _set_quota(quota_emulator, 1)

    assert [send({"message": a_message()}).status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize(
    "body", [{"per_minute": -5}, {"per_minute": "many"}, {"quota": 5}, ["per_minute"]]
)
def test_a_bad_quota_body_is_refused_and_leaves_the_quota_alone(
    quota_emulator: str, body: Any
) -> None:
    _set_quota(quota_emulator, 7)

    response = requests.post(f"{quota_emulator}/emulator/quota", json=body, timeout=5)

    assert response.status_code == 400 and "per_minute" in response.json()["error"]
    assert requests.get(f"{quota_emulator}/emulator/quota", timeout=5).json()["per_minute"] == 7


def test_a_quota_given_at_start_applies_to_each_project_on_its_own(access_token: str) -> None:
    proc, base_url = start_emulator_process(quota_per_minute=2)
    try:
        headers = {"Authorization": f"Bearer {access_token}"}

        def send_to(project: str) -> int:
            return requests.post(
                f"{base_url}/v1/projects/{project}/messages:send",
                json={"message": a_message()},
                headers=headers,
                timeout=5,
            ).status_code

        answers = [send_to(p) for p in ("news-a", "news-a", "news-b", "news-a", "news-b")]
        quota = requests.get(f"{base_url}/emulator/quota", timeout=5).json()
    finally:
        stop_emulator_process(proc)
    assert answers == [200, 200, 200, 429, 200]
    assert quota["per_minute"] == 2
    assert quota["projects"]["news-a"] == {"in_window": 2, "refused": 1}


def test_the_fcm_emulator_command_takes_a_quota_per_minute(tmp_path: Any) -> None:
    port = free_port()
    proc = notifier_process(
        ["fcm-emulator", "--port", str(port), "--quota-per-minute", "120000"],
        {"NOTIFIER_DATA_DIR": str(tmp_path)},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/emulator/stats", proc)
        quota = requests.get(f"http://127.0.0.1:{port}/emulator/quota", timeout=5).json()
    finally:
        output = stop(proc)
    assert quota["per_minute"] == 120_000
    assert "120,000 sends per project in any 60 s" in output
