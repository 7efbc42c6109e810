"""notifier's FCM sender: firebase-admin's credentials, message model and errors on a pooled loop.

firebase-admin is reached only through :mod:`notifier.fcm.sdk` (the one module importing it, and
the one place its private names are used). The SDK's own ``send_each_for_multicast``
spends a thread and about 1 ms of CPU per message; here each message is still a
``firebase_admin.messaging.Message`` encoded by the SDK's encoder, and each failure still becomes
the SDK's exception (``UnregisteredError``, ``QuotaExceededError``, ...) through the SDK's own
error parser, but the HTTP requests go out concurrently from one long-lived event loop per
process over a pooled aiohttp session: about a sixth of the CPU per message (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import requests

from notifier.fcm import fields as fcm_fields
from notifier.fcm import sdk
from notifier.fcm.loop import BackgroundLoop
from notifier.fcm.outcomes import classify, names_registration_token, parse_retry_after
from notifier.fcm.sdk import credentials, exceptions, messaging
from notifier.fcm.types import (
    Accepted,
    Fatal,
    Localized,
    Outcome,
    Platform,
    PushAlert,
    Retry,
    Target,
)

if TYPE_CHECKING:
    from notifier.core.apps import App
    from notifier.core.settings import Settings

GOOGLE_FCM_ENDPOINT = "https://fcm.googleapis.com"
MAX_BATCH = 500
EMULATOR_SERVICE_ACCOUNT = "emulator-service-account.json"
_LOOPBACK_IN_FLIGHT = 100

# FCM-specific SDK errors first: they subclass the generic ones (ThirdPartyAuthError is an
# UnauthenticatedError), and their FCM code says more than the canonical status.
_FCM_CODES: tuple[tuple[type[Exception], str], ...] = (
    (messaging.UnregisteredError, "UNREGISTERED"),
    (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
    (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
    (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
)


# ---------------------------------------------------------------------------------------------
# Messages


def build_message(alert: PushAlert, target: Target) -> messaging.Message:
    """The FCM message telling ``target`` about ``alert`` (raises ValueError once it expired).

    Only the target's own platform section is included: it is all FCM forwards to that device,
    and it keeps the payload well inside the 4 KB limit. The alert id is the collapse key, tag and
    collapse id everywhere, so a duplicate replaces the first notification instead of stacking.
    """
    ttl = fcm_fields.remaining_ttl(alert)
    if ttl <= 0:
        raise ValueError(f"alert {alert.alert_id} has expired")
    return _message(alert, target.platform, target.token, ttl, target.text, target.silent)


def _message(
    alert: PushAlert,
    platform: Platform,
    token: str,
    ttl: int,
    text: Localized | None = None,
    silent: bool = False,
) -> messaging.Message:
    """The message for one platform; ``text`` (a translation) and ``silent`` (quiet hours) are
    the device's own, everything else is the alert's."""
    alert_id = alert.alert_id
    headline = text.headline if text else alert.headline
    body = text.body if text else alert.body
    url = text.url if text else alert.url
    android = apns = webpush = None
    if platform == Platform.ANDROID:
        android = messaging.AndroidConfig(
            priority="normal" if silent else "high",
            ttl=ttl,
            collapse_key=alert_id,
            notification=messaging.AndroidNotification(
                tag=alert_id,
                channel_id=fcm_fields.android_channel(silent),
                priority="low" if silent else None,
            ),
        )
    elif platform == Platform.IOS:
        apns = messaging.APNSConfig(
            headers={
                "apns-priority": "5" if silent else "10",
                "apns-push-type": "alert",
                "apns-collapse-id": fcm_fields.apns_collapse_id(alert_id),
                "apns-expiration": fcm_fields.expiration_timestamp(alert),
            },
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    thread_id=fcm_fields.thread_id(alert),
                    # Lets the app's notification service extension download the image.
                    mutable_content=True if alert.image_url else None,
                    # The SDK has no field for it yet; APNs reads it from aps.
                    custom_data={"interruption-level": fcm_fields.ios_interruption_level(silent)},
                )
            ),
            fcm_options=messaging.APNSFCMOptions(image=alert.image_url),
        )
    else:
        link = fcm_fields.https_link(alert.open_url or url)
        webpush = messaging.WebpushConfig(
            headers={
                "Urgency": "normal" if silent else "high",
                "TTL": str(ttl),
                "Topic": fcm_fields.webpush_topic(alert_id),
            },
            notification=messaging.WebpushNotification(
                tag=alert_id, silent=True if silent else None
            ),
            fcm_options=messaging.WebpushFCMOptions(link=link) if link else None,
        )
    message = messaging.Message(
        notification=messaging.Notification(title=headline, body=body, image=alert.image_url),
        data={"alert_id": alert_id, "url": url},
        android=android,
        apns=apns,
        webpush=webpush,
        fcm_options=messaging.FCMOptions(analytics_label=fcm_fields.analytics_label(alert)),
    )
    # Devices give us FCM registration tokens, which HTTP v1 still takes as ``token``; SDK 7.7
    # deprecates the constructor argument in favour of installation ids (``fid``), a different
    # identifier, so the token is set after construction to keep every send free of warnings.
    message.token = token
    return message


# One per process, shared by every sender in it.
_LOOP = BackgroundLoop("fcm-sender-loop")


class _Reply(NamedTuple):
    status: int
    retry_after: str | None
    body: bytes
    seconds: float = 0.0


_NO_REPLY = _Reply(0, None, b"")

# Stands for the device's token while the SDK encodes a batch's message once; never a real
# token (those are validated against notifier.core.patterns on the way in).
_TOKEN_PLACEHOLDER = "notifier-token-placeholder"  # noqa: S105 - not a secret


def _template(encoded: dict[str, Any]) -> tuple[bytes, bytes]:
    """The request body around the token: ``head + json(token) + tail`` is the whole body."""
    if encoded.get("token") != _TOKEN_PLACEHOLDER:
        raise ValueError("the encoded message carries no token placeholder")
    rest = {key: value for key, value in encoded.items() if key != "token"}
    body = json.dumps({"message": rest}).encode()
    # The body ends with the two closing braces: the token goes in as the message's last member.
    return body[:-2] + (b", " if rest else b"") + b'"token": ', b"}}"


class ServiceAccountWriter(Protocol):
    """Writes (or reuses) a service account for the emulator and returns its path."""

    def __call__(self, path: Path, *, project_id: str, token_uri: str) -> Path: ...


# ---------------------------------------------------------------------------------------------
# The sender


class FcmSender:
    """Sends one alert to a batch of devices and says, per device, what became of it.

    Thread-safe; one instance per worker process is enough. The connection pool holds
    ``pool_size`` connections to whichever base URL is used (Google or the emulator), so a full
    batch of 500 goes out at once.
    """

    def __init__(
        self,
        *,
        project_id: str,
        endpoint: str | None,
        credentials_path: Path | None,
        pool_size: int = MAX_BATCH,
        timeout: float = 10.0,
        max_in_flight: int | None = None,
    ) -> None:
        if credentials_path is None:
            raise ValueError(
                "credentials_path is required: a Firebase service account, or one written by "
                "notifier.emulator.write_service_account for the emulator"
            )
        self.project_id = project_id
        self.endpoint = (endpoint or GOOGLE_FCM_ENDPOINT).rstrip("/")
        self._url = f"{self.endpoint}/v1/projects/{project_id}/messages:send"
        self._pool_size = pool_size
        self._timeout = timeout
        self._max_in_flight = max_in_flight or _default_in_flight(self.endpoint, pool_size)
        # The SDK's Certificate gives google-auth credentials already scoped for FCM.
        self._credential = credentials.Certificate(str(credentials_path)).get_credential()
        self._auth_pid = 0
        self._reset_auth()
        self._headers = {
            "Content-Type": "application/json",
            "X-GOOG-API-FORMAT-VERSION": "2",
            **sdk.client_header(),
            **sdk.metrics_headers(),
        }
        self._session: aiohttp.ClientSession | None = None
        self._session_pid = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, emulator_account: ServiceAccountWriter | None = None
    ) -> FcmSender:
        """The sender the settings describe: the emulator unless real credentials are configured.

        For the emulator, a generated service account under ``data_dir`` (token_uri pointing at
        the emulator) lets google-auth run its real token flow offline. The caller passes the
        writer (``notifier.emulator.ensure_service_account``): production code never imports
        the emulator, a development tool.
        """
        endpoint = settings.effective_fcm_endpoint
        credentials_path = settings.fcm_credentials
        project_id = settings.fcm_project_id
        if credentials_path is None:
            if endpoint is None:  # pragma: no cover - settings always give one or the other
                raise ValueError("neither NOTIFIER_FCM_CREDENTIALS nor an FCM endpoint is set")
            if emulator_account is None:
                raise ValueError(
                    "NOTIFIER_FCM_CREDENTIALS is not set and no emulator_account was given "
                    "to write a service account for the FCM emulator"
                )
            credentials_path = emulator_account(
                settings.data_dir / EMULATOR_SERVICE_ACCOUNT,
                project_id=project_id,
                token_uri=f"{endpoint}/token",
            )
        elif "fcm_project_id" not in settings.model_fields_set:
            # Real credentials name their project; the local default would be wrong for Google.
            project_id = credentials.Certificate(str(credentials_path)).project_id or project_id
        return cls(project_id=project_id, endpoint=endpoint, credentials_path=credentials_path)

    @classmethod
    def for_app(
        cls,
        app: App,
        settings: Settings,
        *,
        emulator_account: ServiceAccountWriter | None = None,
    ) -> FcmSender:
        """The sender of one app of the apps file: its project, its service account.

        The implicit ``default`` app (no apps file) is :meth:`from_settings`, unchanged.
        """
        if settings.apps_file is None:
            return cls.from_settings(settings, emulator_account=emulator_account)
        if app.credentials is None:  # pragma: no cover - the apps file requires credentials
            raise ValueError(f"app {app.id!r} has no credentials")
        return cls(
            project_id=app.project_id,
            endpoint=settings.effective_fcm_endpoint,
            credentials_path=app.credentials,
        )

    # -- public API ----------------------------------------------------------------------------

    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]:
        """Send ``alert`` to each target; one outcome per target, in the same order.

        An expired alert sends nothing and every target is ``Fatal("expired")``. Never raises for
        what FCM or the network does; the caller records the outcomes. When ``latencies`` is
        given, the seconds each answered request took are appended to it (for the metrics).
        """
        if len(targets) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} targets per batch, got {len(targets)}")
        if not targets:
            return []
        ttl = fcm_fields.remaining_ttl(alert)
        if ttl <= 0:
            return [Fatal(t.device_id, "expired") for t in targets]
        try:
            bodies = self._bodies(alert, targets, ttl)
        except ValueError:
            # The SDK's encoder refused the alert itself: no device could ever receive it.
            return [Fatal(t.device_id, "invalid_message") for t in targets]
        try:
            authorization = self._authorization()
        except google.auth.exceptions.GoogleAuthError as exc:
            # The token endpoint unreachable, or refusing this account: nothing can be sent now.
            transport = isinstance(exc, google.auth.exceptions.TransportError)
            return [
                Retry(t.device_id, "network" if transport else "UNAUTHENTICATED") for t in targets
            ]
        replies = self._post_all(bodies, authorization)
        # An access token can expire or be revoked mid-flight: refresh once and resend those.
        stale = [i for i, reply in enumerate(replies) if _is_unauthenticated(reply)]
        if stale:
            try:
                authorization = self._authorization(force=True)
            except google.auth.exceptions.GoogleAuthError:
                pass
            else:
                again = self._post_all([bodies[i] for i in stale], authorization)
                for index, reply in zip(stale, again, strict=True):
                    replies[index] = reply
        if latencies is not None:
            latencies.extend(r.seconds for r in replies if isinstance(r, _Reply))
        return [
            self._outcome(target.device_id, reply)
            for target, reply in zip(targets, replies, strict=True)
        ]

    def warm_up(self) -> None:
        """Fetch an access token and open the event loop ahead of the first batch."""
        self._authorization()
        _LOOP.run(self._touch_session(), timeout=self._timeout)

    async def _touch_session(self) -> None:
        self._loop_session()

    def close(self) -> None:
        """Close the connection pool of this process (the loop thread stays for other senders)."""
        session, self._session = self._session, None
        if session is not None and self._session_pid == os.getpid():
            _LOOP.run(session.close(), timeout=self._timeout)
        self._auth_session.close()

    # -- internals -----------------------------------------------------------------------------

    def _bodies(self, alert: PushAlert, targets: Sequence[Target], ttl: int) -> list[bytes]:
        # The SDK builds, validates and encodes one message per platform, language and quietness
        # (a handful of variants per batch): that is the costly part, and it gives the same
        # answer for every device of a variant. Each device's body is then the variant's
        # encoded bytes with its JSON-escaped token spliced in where the placeholder was.
        templates: dict[tuple[str, Localized | None, bool], tuple[bytes, bytes]] = {}
        bodies = []
        for target in targets:
            key = (target.platform, target.text, target.silent)
            template = templates.get(key)
            if template is None:
                template = templates[key] = _template(
                    sdk.encode_message(
                        _message(
                            alert,
                            target.platform,
                            _TOKEN_PLACEHOLDER,
                            ttl,
                            target.text,
                            target.silent,
                        )
                    )
                )
            head, tail = template
            bodies.append(head + json.dumps(target.token).encode() + tail)
        return bodies

    def _reset_auth(self) -> None:
        # A forked child must not share the parent's lock state or pooled token-endpoint sockets.
        self._credential_lock = threading.Lock()
        self._auth_session = requests.Session()
        self._auth_request = google.auth.transport.requests.Request(self._auth_session)
        self._auth_pid = os.getpid()

    def _authorization(self, force: bool = False) -> str:
        """``Bearer <token>``, refreshing through google-auth when needed (one thread at a time)."""
        if self._auth_pid != os.getpid():
            self._reset_auth()
        with self._credential_lock:
            if force or not self._credential.valid:
                self._credential.refresh(self._auth_request)
            return f"Bearer {self._credential.token}"

    def _post_all(self, bodies: list[bytes], authorization: str) -> list[_Reply | BaseException]:
        # Every request has its own timeout inside the loop; this outer bound only guards against
        # a wedged loop, allowing each wave of in-flight requests its full timeout.
        waves = -(-len(bodies) // self._max_in_flight)
        bound = (waves + 1) * self._timeout + 5
        try:
            return _LOOP.run(self._post_concurrently(bodies, authorization), bound)
        except TimeoutError as exc:
            return [exc] * len(bodies)

    async def _post_concurrently(
        self, bodies: list[bytes], authorization: str
    ) -> list[_Reply | BaseException]:
        session = self._loop_session()
        headers = {**self._headers, "Authorization": authorization}
        replies: list[_Reply | BaseException] = [_NO_REPLY] * len(bodies)
        pending = iter(range(len(bodies)))

        # A fixed set of workers sharing one iterator of indexes: cheaper than a task and a
        # semaphore per message, and it bounds the requests in flight.
        async def worker() -> None:
            for index in pending:
                replies[index] = await self._post(session, bodies[index], headers)

        await asyncio.gather(*(worker() for _ in range(min(self._max_in_flight, len(bodies)))))
        return replies

    async def _post(
        self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]
    ) -> _Reply | BaseException:
        started = time.perf_counter()
        try:
            async with session.post(self._url, data=body, headers=headers) as response:
                payload = await response.read()
                return _Reply(
                    response.status,
                    response.headers.get("Retry-After"),
                    payload,
                    time.perf_counter() - started,
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return exc

    def _loop_session(self) -> aiohttp.ClientSession:
        # Runs on the loop thread only, so creating the session needs no lock.
        if self._session is None or self._session_pid != os.getpid():
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, keepalive_timeout=120
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),  # FCM sets no cookies; skip the bookkeeping
            )
            self._session_pid = os.getpid()
        return self._session

    def _outcome(self, device_id: int, reply: _Reply | BaseException) -> Outcome:
        if isinstance(reply, BaseException):
            return Retry(device_id, "network")
        if reply.status == 200:
            name = _accepted_name(reply.body)
            if name is not None:
                return Accepted(device_id, name)
            try:
                return Accepted(device_id, json.loads(reply.body)["name"])
            except (ValueError, KeyError, TypeError):
                return Retry(device_id, "UNKNOWN")
        error = sdk.error_from_answer(self._url, reply.status, reply.body, reply.retry_after)
        code = _error_code(error)
        detail = _error_dict(reply.body)
        return classify(
            device_id,
            code,
            token_named=code == "INVALID_ARGUMENT" and names_registration_token(str(error), detail),
            retry_after=parse_retry_after(reply.retry_after),
        )


class UnknownAppSender:
    """Stands in for an app the deployment no longer serves (removed from the apps file while
    its batches waited): nothing can be sent with credentials that are gone, so each device
    fails with reason ``unknown_app`` instead of retrying until the TTL."""

    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]:
        return [Fatal(t.device_id, "unknown_app") for t in targets]

    def warm_up(self) -> None:
        """Nothing to warm up."""

    def close(self) -> None:
        """Nothing to close."""


class FcmSenders:
    """One :class:`FcmSender` per app, made on first use and kept for the process's life.

    Each app has its own service account, OAuth token, connection pool and project URL, so one
    app's revoked credentials or slow answers never hold up another's batches (they share only
    the process's event loop, which waits on sockets, never on an app).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        emulator_account: ServiceAccountWriter | None = None,
    ) -> None:
        self._settings = settings
        self._emulator_account = emulator_account
        self._senders: dict[str, FcmSender | UnknownAppSender] = {}
        self._lock = threading.Lock()

    def for_app(self, app_id: str) -> FcmSender | UnknownAppSender:
        """The sender of ``app_id`` (thread-safe; a sender is built once per app)."""
        app = self._settings.apps.sending(app_id)
        app_id = app.id if app is not None else app_id  # one sender per project, not per alias
        with self._lock:
            sender = self._senders.get(app_id)
            if sender is None:
                if app is None:
                    sender = UnknownAppSender()
                else:
                    sender = FcmSender.for_app(
                        app, self._settings, emulator_account=self._emulator_account
                    )
                self._senders[app_id] = sender
            return sender

    def warm_up(self) -> None:
        """Warm the default app's sender now, the other apps' in a background thread.

        Process start-up stays as short as with one app (Celery gives a pool process a few
        seconds to come up), yet every app has its token before its first alert. A failure of
        the default app is raised; the others' show on their first batch, which retries.
        """
        apps = self._settings.apps
        others = [app_id for app_id in apps.ids if app_id != apps.default.id]
        if others:
            threading.Thread(
                target=self._warm_quietly, args=(others,), name="fcm-warm-up", daemon=True
            ).start()
        self.for_app(apps.default.id).warm_up()

    def _warm_quietly(self, app_ids: list[str]) -> None:
        for app_id in app_ids:
            try:
                self.for_app(app_id).warm_up()
            except Exception:  # noqa: S112 - a cold or refused app is retried by its batches
                continue

    def close(self) -> None:
        with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            sender.close()


def _default_in_flight(endpoint: str, pool_size: int) -> int:
    """How many requests to keep in flight: the whole pool for a remote FCM, fewer on loopback.

    Throughput is in-flight requests over latency, so across the internet every pooled
    connection is needed; on loopback (the emulator) latency is near zero and a window of 100
    gives the same throughput with measurably less CPU (fewer sockets to service per batch).
    """
    host = urlsplit(endpoint).hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        return min(pool_size, _LOOPBACK_IN_FLIGHT)
    return pool_size


def _error_code(error: exceptions.FirebaseError) -> str:
    for error_type, code in _FCM_CODES:
        if isinstance(error, error_type):
            return code
    return str(error.code)


def _error_dict(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


# FCM's answer to an accepted message: ``{"name": "projects/<p>/messages/<id>"}`` (pretty-printed
# by Google, compact by some proxies): the name is the one string in it.
_WS = rb"[ \t\n\r]*"  # JSON's whitespace, no more
_ACCEPTED = re.compile(
    rb"\{" + _WS + rb'"name"' + _WS + rb":" + _WS + rb'"([A-Za-z0-9_:/.%\-]*)"' + _WS + rb"\}" + _WS
)


def _accepted_name(body: bytes) -> str | None:
    """The message name of the usual 200 answer, matched as bytes; None for any other body
    (escapes, more members), which the caller leaves to the JSON parser."""
    match = _ACCEPTED.fullmatch(body)
    return None if match is None else match.group(1).decode()


def _is_unauthenticated(reply: _Reply | BaseException) -> bool:
    # A refused access token, not THIRD_PARTY_AUTH_ERROR (also 401, but about APNs/web push).
    return (
        isinstance(reply, _Reply)
        and reply.status == 401
        and b"THIRD_PARTY_AUTH_ERROR" not in reply.body
    )


# ---------------------------------------------------------------------------------------------
# The stock SDK against another base URL (benchmarks, tests, and anyone wanting the plain SDK)


def initialize_stock_app(
    *,
    credentials_path: Path,
    project_id: str,
    endpoint: str | None,
    name: str,
    pool_size: int = MAX_BATCH,
) -> sdk.App:
    """A firebase-admin App whose messaging service sends to ``endpoint`` (Google when None).

    Only the base URL and its connection pool change (:func:`notifier.fcm.sdk.redirect_messaging`);
    everything else (credentials, encoder, retries, error mapping) is the SDK's, unmodified.
    """
    app = sdk.initialize_app(str(credentials_path), project_id, name)
    if endpoint:
        sdk.redirect_messaging(app, endpoint, pool_size)
    return app


__all__ = [
    "GOOGLE_FCM_ENDPOINT",
    "MAX_BATCH",
    "FcmSender",
    "FcmSenders",
    "UnknownAppSender",
    "build_message",
    "initialize_stock_app",
]
