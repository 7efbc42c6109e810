"""firebase-admin's private names that notifier.fcm.sdk relies on exist and behave as used.

An upgrade of firebase-admin may move any of them without notice. These tests say which name went
missing and which versions were tested, so the upgrade fails here, in seconds and by name, rather
than as wrong outcomes in a send. They need no emulator: each name is exercised in-process.
"""

from __future__ import annotations

import json
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
import requests
from firebase_admin import _http_client, _utils, exceptions, messaging
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from notifier.emulator.errors import FcmProblem, fcm_error_body
from notifier.emulator.service_account import write_service_account
from notifier.fcm import sdk
from notifier.fcm.sender import MAX_BATCH, build_message
from tests.sender.factories import PROJECT, make_alert, make_target

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
URL = f"https://fcm.googleapis.com/v1/projects/{PROJECT}/messages:send"
BASE = "http://127.0.0.1:9"


def moved(owner: str, name: str) -> str:
    """The failure message: what moved, and what to do about it."""
    return (
        f"firebase-admin {sdk.VERSION} has no {owner}.{name}, which notifier/fcm/sdk.py uses; it "
        f"was tested with firebase-admin {sdk.TESTED_VERSIONS}: adapt sdk.py, then widen the pin"
    )


@pytest.fixture(scope="module")
def stock_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[firebase_admin.App]:
    """A stock App; nothing is sent, so its token endpoint is never reached."""
    account = write_service_account(
        tmp_path_factory.mktemp("sdk") / "sa.json", project_id=PROJECT, token_uri=f"{BASE}/token"
    )
    app = sdk.initialize_app(str(account), PROJECT, name="sdk-private-names")
    yield app
    # delete_app closes the SDK's async client with asyncio.run(), which refuses to run in a thread
    # that already has a running loop (Playwright's, when the browser suites ran first).
    closer = threading.Thread(target=firebase_admin.delete_app, args=(app,))
    closer.start()
    closer.join(timeout=10)


# --- the range tested and the pin ---------------------------------------------------------------


def test_the_installed_firebase_admin_is_a_tested_release() -> None:
    assert sdk.VERSION in SpecifierSet(sdk.TESTED_VERSIONS), (
        f"firebase-admin {sdk.VERSION} is installed, but notifier/fcm/sdk.py was tested with "
        f"{sdk.TESTED_VERSIONS} only: run tests/sender, then update TESTED_VERSIONS and the pin"
    )


def test_pyproject_pins_firebase_admin_to_the_tested_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (pin,) = [Requirement(d) for d in dependencies if Requirement(d).name == "firebase-admin"]
    assert pin.specifier == SpecifierSet(sdk.TESTED_VERSIONS)


# --- every private name exists --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "owner_name", "name"),
    [
        (messaging, "firebase_admin.messaging", "_MessagingService"),
        (messaging, "firebase_admin.messaging", "_get_messaging_service"),
        (_http_client, "firebase_admin._http_client", "METRICS_HEADERS"),
        (_http_client, "firebase_admin._http_client", "DEFAULT_RETRY_CONFIG"),
        (_utils, "firebase_admin._utils", "handle_platform_error_from_httpx"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_module_level_private_name_exists(owner: object, owner_name: str, name: str) -> None:
    assert hasattr(owner, name), moved(owner_name, name)


@pytest.mark.parametrize("name", ["encode_message", "_build_fcm_error_httpx"])
def test_each_private_method_of_the_messaging_service_exists(name: str) -> None:
    service_class = getattr(messaging, "_MessagingService", None)
    assert callable(getattr(service_class, name, None)), moved(
        "firebase_admin.messaging._MessagingService", name
    )


@pytest.mark.parametrize("name", ["_fcm_url", "_fcm_topic_url", "_client"])
def test_each_attribute_of_a_messaging_service_exists(
    stock_app: firebase_admin.App, name: str
) -> None:
    service = messaging._get_messaging_service(stock_app)
    assert hasattr(service, name), moved("firebase_admin.messaging._MessagingService", name)


# --- and each behaves as notifier uses it -------------------------------------------------------


def test_the_encoder_gives_the_json_fcm_receives() -> None:
    alert = make_alert(ttl_seconds=600)
    encoded = sdk.encode_message(build_message(alert, make_target("tok-1", "android")))
    assert json.loads(json.dumps(encoded)) == encoded  # plain JSON, ready for the request body
    assert encoded["token"] == "tok-1"
    assert encoded["notification"]["title"] == alert.headline
    assert encoded["data"] == {"alert_id": alert.alert_id, "url": alert.url}
    assert encoded["android"]["priority"] == "high"
    assert encoded["android"]["ttl"].endswith("s")  # a Duration string, as HTTP v1 takes it


def test_the_encoder_refuses_an_invalid_message_with_value_error() -> None:
    """The sender turns this ValueError into ``Fatal("invalid_message")`` for the whole batch."""
    message = messaging.Message(android=messaging.AndroidConfig(priority="urgent"))
    message.token = "t"  # set after construction, as the sender does (7.7 deprecates the argument)
    with pytest.raises(ValueError, match="priority"):
        sdk.encode_message(message)


def test_the_metrics_header_names_this_firebase_admin() -> None:
    headers = sdk.metrics_headers()
    assert f"fire-admin/{sdk.VERSION}" in headers["x-goog-api-client"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())


@pytest.mark.parametrize(
    ("fcm_code", "retry_after", "expected"),
    [
        ("UNREGISTERED", None, messaging.UnregisteredError),
        ("SENDER_ID_MISMATCH", None, messaging.SenderIdMismatchError),
        ("QUOTA_EXCEEDED", "30", messaging.QuotaExceededError),
        ("THIRD_PARTY_AUTH_ERROR", None, messaging.ThirdPartyAuthError),
        ("INVALID_ARGUMENT", None, exceptions.InvalidArgumentError),
        ("UNAVAILABLE", "5", exceptions.UnavailableError),
        ("INTERNAL", None, exceptions.InternalError),
    ],
)
def test_the_error_parser_raises_what_the_sdk_would(
    fcm_code: str, retry_after: str | None, expected: type[Exception]
) -> None:
    problem = FcmProblem(fcm_code, f"{fcm_code} from FCM")
    body = json.dumps(fcm_error_body(problem)).encode()
    error = sdk.error_from_answer(URL, problem.http_status, body, retry_after)
    assert type(error) is expected
    assert str(error) == f"{fcm_code} from FCM"
    assert error.http_response is not None
    assert error.http_response.status_code == problem.http_status
    assert error.http_response.headers.get("Retry-After") == retry_after


def test_the_error_parser_copes_with_a_body_that_is_not_json() -> None:
    """A proxy's HTML page: the HTTP status alone decides, as in the SDK."""
    error = sdk.error_from_answer(URL, 503, b"<html>Service Unavailable</html>", None)
    assert isinstance(error, exceptions.UnavailableError)
    assert error.code == "UNAVAILABLE"


def test_redirecting_the_stock_sdk_moves_both_urls_and_pools_the_new_base(
    stock_app: firebase_admin.App,
) -> None:
    sdk.redirect_messaging(stock_app, BASE + "/", pool_size=MAX_BATCH)
    service = messaging._get_messaging_service(stock_app)
    assert service._fcm_url == f"{BASE}/v1/projects/{PROJECT}/messages:send"
    assert service._fcm_topic_url == f"{BASE}/v1/projects/{PROJECT}/registrations"
    adapter = service._client.session.get_adapter(service._fcm_url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter._pool_maxsize == MAX_BATCH
    assert adapter.max_retries is _http_client.DEFAULT_RETRY_CONFIG


# --- a moved name fails by name -------------------------------------------------------------------


def test_a_missing_private_name_fails_naming_it_and_the_tested_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(_http_client, "METRICS_HEADERS")
    with pytest.raises(sdk.SdkIncompatibleError) as raised:
        sdk.metrics_headers()
    assert "firebase_admin._http_client.METRICS_HEADERS" in str(raised.value)
    assert sdk.TESTED_VERSIONS in str(raised.value)


def test_a_renamed_url_attribute_is_refused_rather_than_silently_added(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Assigning ``_fcm_url`` to a service that no longer reads it would send to Google."""

    class RenamedService:
        def __init__(self) -> None:
            self.fcm_url = "https://fcm.googleapis.com/..."

    service = RenamedService()
    fake_app: Any = type("App", (), {"project_id": PROJECT})()
    monkeypatch.setattr(messaging, "_get_messaging_service", lambda app: service)
    with pytest.raises(sdk.SdkIncompatibleError, match=re.escape("_MessagingService._fcm_url")):
        sdk.redirect_messaging(fake_app, BASE, pool_size=1)
    assert not hasattr(service, "_fcm_url")
