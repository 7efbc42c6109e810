"""One emulator serves several apps' projects at once: quotas, counts and revoked credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import google.auth.exceptions
import google.auth.transport.requests
import pytest
import requests
from google.oauth2 import service_account

from notifier.emulator import start_emulator_process, stop_emulator_process, write_service_account
from tests.emulator.helpers import a_message, fcm_error

SCOPES = ["https://www.googleapis.com/auth/firebase.messaging"]


@pytest.fixture(scope="module")
def open_emulator() -> Iterator[str]:
    """An emulator pinned to no project, with a quota of 3 a minute for every project."""
    proc, base_url = start_emulator_process(quota_per_minute=3)
    yield base_url
    stop_emulator_process(proc)


@pytest.fixture(autouse=True)
def _reset(open_emulator: str) -> Iterator[None]:
    yield
    requests.post(f"{open_emulator}/emulator/quota", json={"per_minute": 3}, timeout=5)
    requests.post(f"{open_emulator}/emulator/oauth/revoked", json={"accounts": []}, timeout=5)


def _credentials(open_emulator: str, folder: Path, project: str) -> service_account.Credentials:
    path = write_service_account(
        folder / f"{project}.json", project_id=project, token_uri=f"{open_emulator}/token"
    )
    return service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)


def _token(creds: service_account.Credentials) -> str:
    creds.refresh(google.auth.transport.requests.Request())
    return str(creds.token)


def _send(base: str, project: str, token: str) -> requests.Response:
    return requests.post(
        f"{base}/v1/projects/{project}/messages:send",
        json={"message": a_message()},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_the_quota_applies_to_each_project_on_its_own_and_one_project_can_have_its_own(
    open_emulator: str, tmp_path: Path
) -> None:
    token = _token(_credentials(open_emulator, tmp_path, "news-en"))
    own = requests.post(
        f"{open_emulator}/emulator/quota", json={"per_minute": 1, "project": "news-fr"}, timeout=5
    )
    assert own.status_code == 200
    en = [_send(open_emulator, "news-en", token).status_code for _ in range(4)]
    fr = [_send(open_emulator, "news-fr", token).status_code for _ in range(2)]

    assert en == [200, 200, 200, 429]
    assert fr == [200, 429]
    quota = requests.get(f"{open_emulator}/emulator/quota", timeout=5).json()
    assert quota["per_minute"] == 3
    assert quota["projects"]["news-fr"] == {"in_window": 1, "refused": 1, "per_minute": 1}
    assert quota["projects"]["news-en"] == {"in_window": 3, "refused": 1}
    stats = requests.get(f"{open_emulator}/emulator/stats", timeout=5).json()
    assert stats["projects"]["news-en"]["accepted"] == 3
    assert stats["projects"]["news-en"]["QUOTA_EXCEEDED"] == 1
    assert stats["projects"]["news-fr"] == {"accepted": 1, "QUOTA_EXCEEDED": 1}


@pytest.mark.parametrize(
    "body",
    [{"per_minute": 1, "project": ""}, {"per_minute": 1, "project": 7}, {"project": "p"}],
)
def test_a_malformed_project_quota_is_a_400(open_emulator: str, body: object) -> None:
    response = requests.post(f"{open_emulator}/emulator/quota", json=body, timeout=5)
    assert response.status_code == 400


def test_revoked_credentials_get_no_token_and_their_tokens_are_refused(
    open_emulator: str, tmp_path: Path
) -> None:
    en = _credentials(open_emulator, tmp_path, "news-en")
    fr = _credentials(open_emulator, tmp_path, "news-fr")
    en_token, fr_token = _token(en), _token(fr)

    revoked = requests.post(
        f"{open_emulator}/emulator/oauth/revoked",
        json={"accounts": [fr.service_account_email]},
        timeout=5,
    )

    assert revoked.json() == {"accounts": [fr.service_account_email]}
    # The token already held by the revoked account is refused; the other app's still works.
    assert _send(open_emulator, "news-fr", fr_token).status_code == 401
    assert _send(open_emulator, "news-en", en_token).status_code == 200
    # And a new token is refused as Google refuses a deleted key.
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        _token(_credentials(open_emulator, tmp_path / "again", "news-fr"))
    assert _token(_credentials(open_emulator, tmp_path / "again", "news-en"))
    stats = requests.get(f"{open_emulator}/emulator/stats", timeout=5).json()
    assert stats["revoked_accounts"] == [fr.service_account_email]
    assert stats["outcomes"]["tokens_refused"] == 1


def test_restoring_revoked_credentials_lets_them_send_again(
    open_emulator: str, tmp_path: Path
) -> None:
    fr = _credentials(open_emulator, tmp_path, "news-fr")
    token = _token(fr)
    requests.post(
        f"{open_emulator}/emulator/oauth/revoked",
        json={"accounts": [fr.service_account_email]},
        timeout=5,
    )
    assert _send(open_emulator, "news-fr", token).status_code == 401
    requests.post(f"{open_emulator}/emulator/oauth/revoked", json={"accounts": []}, timeout=5)
    assert _send(open_emulator, "news-fr", token).status_code == 200


@pytest.mark.parametrize("body", [{}, {"accounts": "a@b"}, {"accounts": [""]}, [], {"x": []}])
def test_a_malformed_revocation_is_a_400(open_emulator: str, body: object) -> None:
    response = requests.post(
        f"{open_emulator}/emulator/oauth/revoked", data=json.dumps(body), timeout=5
    )
    assert response.status_code == 400


def test_fcm_error_helper_reads_the_401(open_emulator: str) -> None:
    # A forged bearer is UNAUTHENTICATED in FCM's own error shape, whatever the project.
    response = _send(open_emulator, "news-de", "ya29.forged")
    assert response.status_code == 401
    assert fcm_error(response)[0] in {"UNAUTHENTICATED", None}
