"""Stock firebase-admin works against the emulator; only the endpoint and credentials differ."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import firebase_admin
import pytest
from firebase_admin import exceptions, messaging

from notifier.fcm.sender import initialize_stock_app
from tests.emulator.conftest import PROJECT

# The SDK deprecates registration tokens in favour of installation ids; tokens are what apps send.
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning")


@pytest.fixture(scope="module")
def app(emulator: str, service_account_file: Path) -> Iterator[firebase_admin.App]:
    app = initialize_stock_app(
        credentials_path=service_account_file,
        project_id=PROJECT,
        endpoint=emulator,
        name="emulator-tests-stock",
    )
    yield app
    # delete_app closes the SDK's async client with asyncio.run(), which refuses to run in a thread
    # that already has a running loop (Playwright's, when the browser suites ran first).
    closer = threading.Thread(target=firebase_admin.delete_app, args=(app,))
    closer.start()
    closer.join(timeout=10)


def _message(token: str) -> messaging.Message:
    return messaging.Message(
        token=token,
        notification=messaging.Notification(title="Breaking", body="Body"),
        android=messaging.AndroidConfig(priority="high", ttl=600),
    )


def test_stock_send_is_accepted(app: firebase_admin.App) -> None:
    assert messaging.send(_message("device-1"), app=app).startswith(f"projects/{PROJECT}/messages/")


def test_stock_dry_run_is_validated_only(app: firebase_admin.App) -> None:
    assert messaging.send(_message("device-1"), dry_run=True, app=app).endswith("fake_message_id")


@pytest.mark.parametrize(
    ("token", "error_class"),
    [
        ("unregistered-1", messaging.UnregisteredError),
        ("mismatch-1", messaging.SenderIdMismatchError),
        ("thirdparty-1", messaging.ThirdPartyAuthError),
        ("invalid-1", exceptions.InvalidArgumentError),
    ],
)
def test_stock_sdk_raises_its_own_error_classes(
    app: firebase_admin.App, token: str, error_class: type[Exception]
) -> None:
    with pytest.raises(error_class):
        messaging.send(_message(token), app=app)


def test_stock_sdk_can_target_an_installation_id(app: firebase_admin.App) -> None:
    message = messaging.Message(
        fid="installation-1", notification=messaging.Notification(title="t")
    )
    assert messaging.send(message, app=app).startswith(f"projects/{PROJECT}/messages/")


def test_stock_multicast_reports_each_device(app: firebase_admin.App) -> None:
    response = messaging.send_each_for_multicast(
        messaging.MulticastMessage(
            tokens=["device-1", "unregistered-2", "device-3"],
            notification=messaging.Notification(title="Breaking"),
        ),
        app=app,
    )
    assert [r.success for r in response.responses] == [True, False, True]
    assert isinstance(response.responses[1].exception, messaging.UnregisteredError)
