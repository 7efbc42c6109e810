"""Device tokens with a known prefix make the emulator answer as FCM does for such a device."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.emulator.helpers import a_message, fcm_error


@pytest.mark.parametrize(
    ("token", "http_status", "status", "code"),
    [
        ("unregistered-1", 404, "NOT_FOUND", "UNREGISTERED"),
        ("invalid-1", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        ("mismatch-1", 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        ("thirdparty-1", 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    ],
)
def test_token_prefix_selects_the_fcm_error(
    send: Callable[..., requests.Response], token: str, http_status: int, status: str, code: str
) -> None:
    response = send({"message": a_message(token=token)})
    assert response.status_code == http_status
    assert fcm_error(response) == (status, code)


def test_invalid_token_error_names_the_token(send: Callable[..., requests.Response]) -> None:
    error = send({"message": a_message(token="invalid-1")}).json()["error"]
    assert error["message"] == "The registration token is not a valid FCM registration token"
    violations = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert violations[0]["fieldViolations"][0]["field"] == "message.token"


def test_message_is_validated_before_the_token_is_looked_at(
    send: Callable[..., requests.Response],
) -> None:
    response = send({"message": a_message(token="unregistered-1", data={"n": 1})})
    assert response.status_code == 400
