"""firebase-admin in one place: the only module that imports it, and every private name used.

The sender keeps firebase-admin's message model, encoder, credentials and error mapping, but
sends over its own pooled loop (see :mod:`notifier.fcm.sender`). Four things it needs have no
public name in the SDK: the encoder (``_MessagingService.encode_message``), the metrics header the
SDK sends (``_http_client.METRICS_HEADERS``), the parser that turns an FCM error answer into the
SDK's exception (``_utils.handle_platform_error_from_httpx`` with
``_MessagingService._build_fcm_error_httpx``), and, for the stock SDK against the emulator, the
messaging service's URL attributes (``_fcm_url``, ``_fcm_topic_url``) and HTTP session.

Each is reached through :func:`_private`, which fails with :class:`SdkIncompatibleError` naming the
attribute and the versions tested, instead of an ``AttributeError`` deep in a send or, worse, a
silently ignored assignment. ``tests/sender/test_sdk_private_names.py`` checks each one, so an
upgrade that moves one fails there first; pyproject pins firebase-admin to ``TESTED_VERSIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import firebase_admin
import httpx
import requests
from firebase_admin import App, _http_client, _utils, credentials, exceptions, messaging

# The firebase-admin releases these private names were checked against; keep in step with the
# ``firebase-admin`` pin in pyproject.toml.
TESTED_VERSIONS = ">=7.7,<7.8"
VERSION: str = firebase_admin.__version__


class SdkIncompatibleError(RuntimeError):
    """firebase-admin no longer has a private name notifier relies on (an untested upgrade)."""

    def __init__(self, owner: str, name: str) -> None:
        super().__init__(
            f"firebase-admin {VERSION} has no {owner}.{name}, which notifier.fcm uses; "
            f"notifier was tested with firebase-admin {TESTED_VERSIONS} (see notifier/fcm/sdk.py)"
        )
        self.owner = owner
        self.name = name


def _private(owner: object, owner_name: str, name: str) -> Any:
    """``owner.name``, or :class:`SdkIncompatibleError` saying which name went missing."""
    try:
        return getattr(owner, name)
    except AttributeError:
        raise SdkIncompatibleError(owner_name, name) from None


def _messaging_service_class() -> Any:
    return _private(messaging, "firebase_admin.messaging", "_MessagingService")


# ---------------------------------------------------------------------------------------------
# What the sender uses


def encode_message(message: messaging.Message) -> dict[str, Any]:
    """The JSON body FCM receives for ``message``, by the SDK's own encoder.

    The encoder also validates: a message the SDK would refuse raises ValueError here.
    """
    encode = _private(
        _messaging_service_class(), "firebase_admin.messaging._MessagingService", "encode_message"
    )
    encoded: dict[str, Any] = encode(message)
    return encoded


def metrics_headers() -> dict[str, str]:
    """The usage-metrics headers the SDK adds to each of its requests (``x-goog-api-client``)."""
    headers: Mapping[str, str] = _private(
        _http_client, "firebase_admin._http_client", "METRICS_HEADERS"
    )
    return dict(headers)


def client_header() -> dict[str, str]:
    """The SDK's own ``X-FIREBASE-CLIENT`` header, naming this firebase-admin version."""
    return {"X-FIREBASE-CLIENT": f"fire-admin-python/{VERSION}"}


def error_from_answer(
    url: str, status: int, body: bytes, retry_after: str | None
) -> exceptions.FirebaseError:
    """The exception firebase-admin itself would raise for this FCM answer, by its own parser.

    FCM-specific errors come out as their classes (``UnregisteredError``, ``QuotaExceededError``,
    ...), others as the canonical ones (``InvalidArgumentError``, ``UnavailableError``, ...).
    """
    handle = _private(_utils, "firebase_admin._utils", "handle_platform_error_from_httpx")
    build_fcm_error = _private(
        _messaging_service_class(),
        "firebase_admin.messaging._MessagingService",
        "_build_fcm_error_httpx",
    )
    request = httpx.Request("POST", url)
    headers = {"Retry-After": retry_after} if retry_after else None
    response = httpx.Response(status, headers=headers, content=body, request=request)
    error = httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)
    firebase_error: exceptions.FirebaseError = handle(error, build_fcm_error)
    return firebase_error


# ---------------------------------------------------------------------------------------------
# The stock SDK against another base URL


def initialize_app(credentials_path: str, project_id: str, name: str) -> App:
    """A firebase-admin App for the service account at ``credentials_path``."""
    return firebase_admin.initialize_app(
        credentials.Certificate(credentials_path), {"projectId": project_id}, name=name
    )


def redirect_messaging(app: App, base_url: str, pool_size: int) -> None:
    """Make ``app``'s messaging service send to ``base_url`` instead of ``fcm.googleapis.com``.

    firebase-admin has no setting for FCM's base URL, so this rewrites the service's two URL
    attributes and mounts a connection pool for the new base, as the SDK itself does for Google.
    Each attribute is checked before it is written: assigning a renamed one would succeed
    silently and leave the SDK sending to Google.
    """
    owner = "firebase_admin.messaging._MessagingService"
    get_service = _private(messaging, "firebase_admin.messaging", "_get_messaging_service")
    service = get_service(app)
    project_id = app.project_id
    base = base_url.rstrip("/")
    for name in ("_fcm_url", "_fcm_topic_url"):
        _private(service, owner, name)
    service._fcm_url = f"{base}/v1/projects/{project_id}/messages:send"
    service._fcm_topic_url = f"{base}/v1/projects/{project_id}/registrations"
    session = _private(_private(service, owner, "_client"), f"{owner}._client", "session")
    if not isinstance(session, requests.Session):
        raise SdkIncompatibleError(f"{owner}._client", "session (a requests.Session)")
    retries = _private(_http_client, "firebase_admin._http_client", "DEFAULT_RETRY_CONFIG")
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retries
    )
    session.mount(base, adapter)


__all__ = [
    "TESTED_VERSIONS",
    "VERSION",
    "App",
    "SdkIncompatibleError",
    "client_header",
    "credentials",
    "encode_message",
    "error_from_answer",
    "exceptions",
    "initialize_app",
    "messaging",
    "metrics_headers",
    "redirect_messaging",
]
