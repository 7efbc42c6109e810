"""The emulator's OAuth2 side behaves like Google's token endpoint and bearer check."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import requests

from notifier.emulator.oauth import JWT_BEARER_GRANT, issue_access_token
from tests.emulator.helpers import a_message


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _assertion(**claims: object) -> str:
    now = int(time.time())
    payload = {
        "iss": "sa@p.iam.gserviceaccount.com",
        "aud": "http://x/token",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": now,
        "exp": now + 3600,
    }
    payload.update(claims)
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(payload)}.c2lnbmF0dXJl"


def test_google_auth_obtains_a_bearer_token(access_token: str) -> None:
    assert access_token.startswith("ya29.")


def test_token_endpoint_answers_like_google(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/token",
        data={"grant_type": JWT_BEARER_GRANT, "assertion": _assertion()},
        timeout=5,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"]


def test_wrong_grant_type_is_refused(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/token",
        data={"grant_type": "client_credentials", "assertion": _assertion()},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_malformed_assertion_is_refused(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/token", data={"grant_type": JWT_BEARER_GRANT, "assertion": "abc"}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_expired_assertion_is_refused(emulator: str) -> None:
    old = int(time.time()) - 7200
    response = requests.post(
        f"{emulator}/token",
        data={"grant_type": JWT_BEARER_GRANT, "assertion": _assertion(iat=old, exp=old + 3600)},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_assertion_without_scope_is_refused(emulator: str) -> None:
    response = requests.post(
        f"{emulator}/token",
        data={"grant_type": JWT_BEARER_GRANT, "assertion": _assertion(scope=None)},
        timeout=5,
    )
    assert response.status_code == 400


def test_send_without_bearer_is_unauthenticated(send: Callable[..., requests.Response]) -> None:
    response = send({"message": a_message()}, token=None)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_send_with_forged_bearer_is_unauthenticated(
    send: Callable[..., requests.Response],
) -> None:
    response = send({"message": a_message()}, token="ya29.emu.9999999999.nonce.0123456789abcdef")
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_send_with_expired_token_is_unauthenticated(
    send: Callable[..., requests.Response],
) -> None:
    expired, _ = issue_access_token(now=time.time() - 7200)
    response = send({"message": a_message()}, token=expired)
    assert response.status_code == 401
