"""The web push stand-in: browsers register, hold a stream, and get what ``messages:send`` accepts.

Over HTTP against the session's emulator process, the way the widget's module talks to it; the
browser side (Chromium, the service worker) is in tests/browser/test_reader_loop.py.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.emulator.helpers import a_message
from tests.emulator_fixtures import STAND_IN_ORIGIN

JSON = {"Content-Type": "application/json"}


def register(emulator: str, **body: str) -> str:
    response = requests.post(f"{emulator}/emulator/webpush/register", json=body, timeout=5)
    assert response.status_code == 200
    token: str = response.json()["token"]
    return token


class Stream:
    """An open stand-in stream read on a thread; ``next()`` waits for the next push."""

    def __init__(self, emulator: str, token: str) -> None:
        self.token = token
        self.response = requests.post(
            f"{emulator}/emulator/webpush/stream", json={"token": token}, stream=True, timeout=10
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        kind = ""
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:") and kind == "push":
                    self.events.put(json.loads(line.removeprefix("data:")))
        except requests.RequestException:
            pass
        self.events.put(None)

    def next(self, timeout: float = 5) -> dict[str, Any] | None:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.reader.join(timeout=5)
        self.response.close()


@pytest.fixture
def open_stream(emulator: str) -> Iterator[Callable[[str], Stream]]:
    streams: list[Stream] = []

    def _open(token: str) -> Stream:
        stream = Stream(emulator, token)
        assert stream.response.status_code == 200
        streams.append(stream)
        return stream

    yield _open
    for stream in streams:
        # Ended by the emulator first: closing a response its thread is still reading would wait.
        requests.post(
            f"{emulator}/emulator/webpush/unregister", json={"token": stream.token}, timeout=5
        )
        stream.close()


def test_each_browser_gets_a_long_random_token_and_keeps_it_while_the_emulator_knows_it(
    emulator: str,
) -> None:
    first, second = register(emulator), register(emulator)

    assert first != second
    assert first.startswith("webpush-") and len(first) >= len("webpush-") + 43
    assert register(emulator, token=first) == first
    assert register(emulator, token="webpush-made-up") not in {"webpush-made-up", first, second}


def test_a_message_for_the_token_arrives_on_its_stream_as_fcm_would_push_it(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    token = register(emulator)
    stream = open_stream(token)
    message = a_message(
        token=token,
        notification={
            "title": "Sirens in the north",
            "body": "Take shelter",
            "image": "https://i/x",
        },
        webpush={"notification": {"tag": "a1"}, "fcm_options": {"link": "https://news.example/a1"}},
    )

    name = send({"message": message}).json()["name"]

    assert stream.next() == {
        "id": name,
        "push": {
            "notification": {
                "title": "Sirens in the north",
                "body": "Take shelter",
                "image": "https://i/x",
                "tag": "a1",
            },
            "data": {"alert_id": "a1", "url": "https://news.example/a1"},
            "fcmOptions": {"link": "https://news.example/a1"},
        },
    }


def test_the_inbox_lists_a_message_the_stand_in_delivered(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    token = register(emulator)
    stream = open_stream(token)
    send({"message": a_message(token=token)})
    assert stream.next() is not None

    found = requests.post(
        f"{emulator}/emulator/messages/search", json={"token": token}, timeout=5
    ).json()["messages"]

    assert [m["display"]["title"] for m in found] == ["Breaking"]


def test_a_message_sent_while_no_page_is_open_arrives_when_one_opens(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    token = register(emulator)
    name = send({"message": a_message(token=token)}).json()["name"]

    stream = open_stream(token)

    event = stream.next()
    assert event is not None and event["id"] == name


def test_a_message_whose_ttl_ran_out_before_a_page_opened_is_dropped(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    token = register(emulator)
    send({"message": a_message(token=token, webpush={"headers": {"TTL": "0"}})})
    fresh = send({"message": a_message(token=token, webpush={"headers": {"TTL": "60"}})})

    stream = open_stream(token)

    event = stream.next()
    assert event is not None and event["id"] == fresh.json()["name"]


def test_other_tokens_messages_never_reach_a_stream(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    mine, theirs = register(emulator), register(emulator)
    stream = open_stream(mine)

    send({"message": a_message(token=theirs)})
    last = send({"message": a_message(token=mine)}).json()["name"]

    event = stream.next()
    assert event is not None and event["id"] == last


def test_a_stream_needs_a_token_the_emulator_issued(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/emulator/webpush/stream", json={"token": "webpush-guessed"}, timeout=5
    )

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_the_token_is_never_taken_from_a_url(emulator: str) -> None:
    token = register(emulator)

    response = requests.get(f"{emulator}/emulator/webpush/stream?token={token}", timeout=5)

    assert response.status_code == 405


def test_unregistering_ends_the_stream_and_later_messages_go_nowhere(
    emulator: str, send: Callable[..., requests.Response], open_stream: Callable[[str], Stream]
) -> None:
    token = register(emulator)
    stream = open_stream(token)

    gone = requests.post(
        f"{emulator}/emulator/webpush/unregister", json={"token": token}, timeout=5
    )

    assert gone.status_code == 204
    assert stream.next() is None
    send({"message": a_message(token=token)})
    reopened = requests.post(
        f"{emulator}/emulator/webpush/stream", json={"token": token}, timeout=5
    )
    assert reopened.status_code == 404


@pytest.mark.parametrize("name", ["register", "stream", "unregister"])
def test_a_page_of_another_origin_is_refused(emulator: str, name: str) -> None:
    token = register(emulator)

    response = requests.post(
        f"{emulator}/emulator/webpush/{name}",
        json={"token": token},
        headers={"Origin": "http://evil.example"},
        timeout=5,
    )

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert register(emulator, token=token) == token  # nothing was unregistered


def test_the_allowed_origin_passes_the_preflight_and_may_read_answers(emulator: str) -> None:
    preflight = requests.options(
        f"{emulator}/emulator/webpush/stream",
        headers={"Origin": STAND_IN_ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=5,
    )
    answer = requests.post(
        f"{emulator}/emulator/webpush/register",
        json={},
        headers={"Origin": STAND_IN_ORIGIN},
        timeout=5,
    )

    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == STAND_IN_ORIGIN
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert answer.headers["Access-Control-Allow-Origin"] == STAND_IN_ORIGIN


def test_only_json_bodies_are_taken_so_browsers_always_preflight(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/emulator/webpush/register",
        data="{}",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )

    assert response.status_code == 415


@pytest.mark.parametrize("body", ["[]", "not json", '{"token": 42}', '{"token": ""}'])
def test_a_malformed_body_is_a_problem_not_a_crash(emulator: str, body: str) -> None:
    response = requests.post(
        f"{emulator}/emulator/webpush/stream", data=body, headers=JSON, timeout=5
    )

    assert response.status_code in (400, 422)
    assert response.json()["status"] == response.status_code
