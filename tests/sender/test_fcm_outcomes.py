"""The firebase-free rules that turn an FCM error code into an outcome."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from notifier.fcm.outcomes import classify, names_registration_token, parse_retry_after
from notifier.fcm.types import Fatal, Prune, Retry


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120") == 120.0


def test_retry_after_as_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("UNREGISTERED", Prune(1, "UNREGISTERED")),
        ("SENDER_ID_MISMATCH", Prune(1, "SENDER_ID_MISMATCH")),
        ("INVALID_ARGUMENT", Fatal(1, "INVALID_ARGUMENT")),
        ("THIRD_PARTY_AUTH_ERROR", Fatal(1, "THIRD_PARTY_AUTH_ERROR")),
        ("UNAVAILABLE", Retry(1, "UNAVAILABLE")),
        ("INTERNAL", Retry(1, "INTERNAL")),
        ("network", Retry(1, "network")),
        ("QUOTA_EXCEEDED", Retry(1, "QUOTA_EXCEEDED", 60.0)),
        ("RESOURCE_EXHAUSTED", Retry(1, "QUOTA_EXCEEDED", 60.0)),
        ("PERMISSION_DENIED", Fatal(1, "PERMISSION_DENIED")),
    ],
)
def test_error_code_maps_to_outcome(code: str, expected: object) -> None:
    assert classify(1, code) == expected


def test_invalid_argument_naming_the_token_prunes() -> None:
    assert classify(1, "INVALID_ARGUMENT", token_named=True) == Prune(1, "INVALID_ARGUMENT")


def test_token_is_recognised_from_fcm_wording_or_field_violation() -> None:
    assert names_registration_token(
        "The registration token is not a valid FCM registration token", None
    )
    violation = {
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "bad"}],
            }
        ]
    }
    assert names_registration_token("Request contains an invalid argument.", violation)
    assert not names_registration_token("Message is too big", {"details": []})
