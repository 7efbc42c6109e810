"""Every FCM answer becomes the right typed outcome, through real firebase-admin over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from notifier.emulator.launcher import free_port
from notifier.fcm.sender import FcmSender
from notifier.fcm.types import Accepted, Fatal, Prune, Retry
from tests.sender.factories import PROJECT, make_alert, make_target


def test_accepted_device_gets_the_message_name(sender: FcmSender) -> None:
    (outcome,) = sender.send_batch(make_alert(), [make_target("good-1", device_id=7)])
    assert isinstance(outcome, Accepted)
    assert outcome.device_id == 7
    assert outcome.message_name.startswith(f"projects/{PROJECT}/messages/")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("unregistered-1", Prune(1, "UNREGISTERED")),
        ("mismatch-1", Prune(1, "SENDER_ID_MISMATCH")),
        ("invalid-1", Prune(1, "INVALID_ARGUMENT")),
        ("thirdparty-1", Fatal(1, "THIRD_PARTY_AUTH_ERROR")),
    ],
    ids=["unregistered-is-pruned", "sender-id-mismatch-is-pruned", "invalid-token-is-pruned",
         "third-party-auth-error-is-fatal"],
)  # fmt: skip
def test_device_errors_map_to_outcomes(sender: FcmSender, token: str, expected: object) -> None:
    assert sender.send_batch(make_alert(), [make_target(token)]) == [expected]


def test_payload_error_is_fatal_and_keeps_the_token(sender: FcmSender) -> None:
    too_big = make_alert(body="x" * 5000)
    assert sender.send_batch(too_big, [make_target()]) == [Fatal(1, "INVALID_ARGUMENT")]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("unavailable_rate", "UNAVAILABLE"), ("internal_rate", "INTERNAL")],
)
def test_server_errors_are_retried(
    sender: FcmSender, set_faults: Callable[..., None], fault: str, reason: str
) -> None:
    set_faults(**{fault: 1.0})
    assert sender.send_batch(make_alert(), [make_target()]) == [Retry(1, reason, None)]


def test_retry_after_is_carried_into_the_outcome(
    sender: FcmSender, set_faults: Callable[..., None]
) -> None:
    set_faults(unavailable_rate=1.0, retry_after_seconds=17)
    assert sender.send_batch(make_alert(), [make_target()]) == [Retry(1, "UNAVAILABLE", 17.0)]


def test_quota_exceeded_waits_at_least_a_minute(
    sender: FcmSender, set_faults: Callable[..., None]
) -> None:
    set_faults(quota_rate=1.0, retry_after_seconds=5)
    assert sender.send_batch(make_alert(), [make_target()]) == [Retry(1, "QUOTA_EXCEEDED", 60.0)]


def test_quota_exceeded_honours_a_longer_retry_after(
    sender: FcmSender, set_faults: Callable[..., None]
) -> None:
    set_faults(quota_rate=1.0, retry_after_seconds=150)
    assert sender.send_batch(make_alert(), [make_target()]) == [Retry(1, "QUOTA_EXCEEDED", 150.0)]


def test_unreachable_fcm_is_a_network_retry(service_account_file: Path) -> None:
    offline = FcmSender(
        project_id=PROJECT,
        endpoint=f"http://127.0.0.1:{free_port()}",
        credentials_path=service_account_file,
        timeout=2,
    )
    offline._credential.token = "ya29.unused"  # skip the token fetch: the point is the send
    offline._credential.expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    try:
        assert offline.send_batch(make_alert(), [make_target()]) == [Retry(1, "network")]
    finally:
        offline.close()


def test_slow_fcm_is_a_network_retry(
    emulator: str, service_account_file: Path, set_faults: Callable[..., None]
) -> None:
    impatient = FcmSender(
        project_id=PROJECT, endpoint=emulator, credentials_path=service_account_file, timeout=0.3
    )
    set_faults(latency_ms=1500)
    try:
        assert impatient.send_batch(make_alert(), [make_target()]) == [Retry(1, "network")]
    finally:
        impatient.close()


def test_mixed_batch_keeps_target_order(sender: FcmSender) -> None:
    targets = [
        make_target("good-a", "android", 1),
        make_target("unregistered-b", "ios", 2),
        make_target("good-c", "web", 3),
        make_target("thirdparty-d", "ios", 4),
    ]
    outcomes = sender.send_batch(make_alert(), targets)
    assert [(o.device_id, o.kind) for o in outcomes] == [
        (1, "accepted"), (2, "prune"), (3, "accepted"), (4, "fatal"),
    ]  # fmt: skip


def test_expired_alert_sends_nothing(sender: FcmSender, emulator: str) -> None:
    stale = make_alert(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    before = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    outcomes = sender.send_batch(stale, [make_target(device_id=1), make_target(device_id=2)])
    after = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    assert outcomes == [Fatal(1, "expired"), Fatal(2, "expired")]
    assert after == before


def test_more_than_500_targets_are_refused(sender: FcmSender) -> None:
    with pytest.raises(ValueError, match="500"):
        sender.send_batch(make_alert(), [make_target(device_id=i) for i in range(501)])


def test_empty_batch_sends_nothing(sender: FcmSender, emulator: str) -> None:
    before = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    assert sender.send_batch(make_alert(), []) == []
    after = requests.get(f"{emulator}/emulator/stats", timeout=5).json()["outcomes"]
    assert after == before


def test_refused_access_token_is_refreshed_and_the_send_repeated(
    emulator: str, service_account_file: Path
) -> None:
    fresh = FcmSender(project_id=PROJECT, endpoint=emulator, credentials_path=service_account_file)
    fresh._credential.token = "ya29.revoked"  # as if Google had revoked the cached token
    fresh._credential.expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    try:
        (outcome,) = fresh.send_batch(make_alert(), [make_target()])
    finally:
        fresh.close()
    assert isinstance(outcome, Accepted)
