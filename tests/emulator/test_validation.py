"""The emulator accepts what FCM accepts and rejects what FCM rejects, with FCM's error JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.emulator.conftest import PROJECT
from tests.emulator.helpers import a_message, fcm_error


def test_valid_message_is_accepted_and_named(send: Callable[..., requests.Response]) -> None:
    response = send({"message": a_message()})
    assert response.status_code == 200
    assert response.json()["name"].startswith(f"projects/{PROJECT}/messages/")


def test_topic_and_condition_targets_are_accepted(send: Callable[..., requests.Response]) -> None:
    topic = a_message(topic="politics")
    del topic["token"]
    condition = a_message(condition="'politics' in topics")
    del condition["token"]
    assert send({"message": topic}).status_code == 200
    assert send({"message": condition}).status_code == 200


def test_camel_case_field_names_are_accepted(send: Callable[..., requests.Response]) -> None:
    message = a_message(
        android={"collapseKey": "a1", "ttl": "60s"}, fcmOptions={"analyticsLabel": "x"}
    )
    assert send({"message": message}).status_code == 200


def _without_target() -> dict[str, Any]:
    message = a_message()
    del message["token"]
    return message


REJECTED: dict[str, dict[str, Any]] = {
    "two targets": a_message(topic="politics"),
    "no target": _without_target(),
    "non-string data": a_message(data={"count": 1}),
    "ttl without unit": a_message(android={"ttl": "10"}),
    "numeric ttl": a_message(android={"ttl": 10}),
    "payload over 4 KB": a_message(data={"blob": "x" * 4100}),
    "unknown field": a_message(colour="red"),
    "unknown android field": a_message(android={"prio": "high"}),
    "bad android priority": a_message(android={"priority": "urgent"}),
    "reserved data key": a_message(data={"from": "me"}),
    "http web link": a_message(webpush={"fcm_options": {"link": "http://news.example/a"}}),
    "malformed analytics label": a_message(fcm_options={"analytics_label": "has spaces"}),
    "non-string apns header": a_message(apns={"headers": {"apns-priority": 10}}),
    "malformed topic": {"topic": "not a topic!"},
}


@pytest.mark.parametrize("message", REJECTED.values(), ids=REJECTED.keys())
def test_invalid_message_is_rejected_with_invalid_argument(
    send: Callable[..., requests.Response], message: dict[str, Any]
) -> None:
    response = send({"message": message})
    assert response.status_code == 400
    assert fcm_error(response) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT")


def test_body_that_is_not_json_is_rejected(emulator: str, access_token: str) -> None:
    response = requests.post(
        f"{emulator}/v1/projects/{PROJECT}/messages:send",
        data=b"{not json",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )
    assert response.status_code == 400


def test_payload_just_under_4_kb_is_accepted(send: Callable[..., requests.Response]) -> None:
    assert send({"message": a_message(data={"blob": "x" * 3900})}).status_code == 200


def test_validate_only_checks_without_delivering(
    send: Callable[..., requests.Response], emulator: str
) -> None:
    response = send({"message": a_message(), "validate_only": True})
    assert response.status_code == 200
    assert response.json()["name"].endswith("/fake_message_id")
    assert requests.get(f"{emulator}/emulator/messages", timeout=5).json()["messages"] == []


def test_another_project_is_permission_denied(send: Callable[..., requests.Response]) -> None:
    response = send({"message": a_message()}, project="someone-else")
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
