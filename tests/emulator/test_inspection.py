"""The inspection API: what arrived, filtered and paged, counted by outcome, and forgotten."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from notifier.emulator.state import EmulatorState
from tests.emulator.helpers import a_message


def _messages(emulator: str, query: str = "") -> dict[str, Any]:
    result: dict[str, Any] = requests.get(f"{emulator}/emulator/messages{query}", timeout=5).json()
    return result


def test_accepted_messages_are_listed_with_token_and_arrival_time(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    name = send({"message": a_message(token="device-a")}).json()["name"]
    (item,) = _messages(emulator)["messages"]
    assert item["name"] == name
    assert item["token"] == "device-a"
    assert item["received_at"] > 0
    assert item["message"]["notification"]["title"] == "Breaking"


def test_rejected_messages_are_not_listed(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(token="unregistered-a")})
    assert _messages(emulator)["messages"] == []


def test_since_returns_only_newer_messages(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(token="first")})
    seq = _messages(emulator)["last_seq"]
    send({"message": a_message(token="second")})
    newer = _messages(emulator, f"?since={seq}")["messages"]
    assert [m["token"] for m in newer] == ["second"]


def test_limit_returns_the_newest(emulator: str, send: Callable[..., requests.Response]) -> None:
    for token in ("one", "two", "three"):
        send({"message": a_message(token=token)})
    assert [m["token"] for m in _messages(emulator, "?limit=2")["messages"]] == ["two", "three"]


def test_search_filters_by_token_given_in_the_body(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(token="mine")})
    send({"message": a_message(token="yours")})
    found = requests.post(
        f"{emulator}/emulator/messages/search", json={"token": "mine"}, timeout=5
    ).json()["messages"]
    assert [m["token"] for m in found] == ["mine"]


def test_delete_forgets_the_messages(emulator: str, send: Callable[..., requests.Response]) -> None:
    send({"message": a_message()})
    assert requests.delete(f"{emulator}/emulator/messages", timeout=5).status_code == 204
    assert _messages(emulator)["messages"] == []


def test_stats_count_outcomes(emulator: str, send: Callable[..., requests.Response]) -> None:
    before = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    send({"message": a_message()})
    send({"message": a_message(token="unregistered-x")})
    after = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    assert after["accepted"] == before.get("accepted", 0) + 1
    assert after["UNREGISTERED"] == before.get("UNREGISTERED", 0) + 1


def test_ring_keeps_only_the_newest_messages() -> None:
    state = EmulatorState(capacity=3)
    for n in range(5):
        state.record(f"m{n}", "token", f"t{n}", "android", {})
    assert [m.target for m in state] == ["t2", "t3", "t4"]
    assert state.last_seq == 5
    assert [m.target for m in state.since(3, 10)] == ["t3", "t4"]


def test_search_with_malformed_paging_is_refused(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/emulator/messages/search", json={"token": "t", "limit": "ten"}, timeout=5
    )
    assert response.status_code == 400
