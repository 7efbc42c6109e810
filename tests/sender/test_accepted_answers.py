"""A 200 answer's message name, read without the JSON parser when it is FCM's usual answer.

The sender matches ``{"name": "..."}`` as bytes (FCM pretty-prints it, proxies may compact it)
and leaves anything else to ``json.loads``: whatever the shape, the outcome must be the one the
JSON parser gives, and an answer that is not JSON stays a retry.
"""

from __future__ import annotations

import json

import pytest

from notifier.fcm.sender import FcmSender, _accepted_name, _Reply
from notifier.fcm.types import Accepted, Retry

NAME = "projects/p/messages/0:1500415314455276%31bd1c9631bd1c96"


@pytest.mark.parametrize(
    "body",
    [
        b'{\n  "name": "' + NAME.encode() + b'"\n}\n',  # Google's pretty-printed answer
        b'{"name":"' + NAME.encode() + b'"}',
        b'{"name": "' + NAME.encode() + b'"}\r\n',
    ],
)
def test_usual_answers_are_read_as_bytes(body: bytes) -> None:
    assert _accepted_name(body) == json.loads(body)["name"] == NAME


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "projects/p/messages/\\u0041"}',  # an escape: the parser's job
        b'{"name": "projects/p/messages/1", "extra": 1}',
        b'{"name": "x"}\x0b',  # not JSON whitespace
        b"",
    ],
)
def test_other_answers_are_left_to_the_json_parser(body: bytes) -> None:
    assert _accepted_name(body) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{\n  "name": "' + NAME.encode() + b'"\n}\n', Accepted(7, NAME)),
        (b'{"name": "projects/p/messages/\\u0041"}', Accepted(7, "projects/p/messages/A")),
        (b'{"name": "x"}\x0b', Retry(7, "UNKNOWN")),
        (b'{"nom": "x"}', Retry(7, "UNKNOWN")),
        (b"<html>", Retry(7, "UNKNOWN")),
    ],
)
def test_the_outcome_is_the_json_parsers(sender: FcmSender, body: bytes, expected: object) -> None:
    assert sender._outcome(7, _Reply(200, None, body)) == expected
