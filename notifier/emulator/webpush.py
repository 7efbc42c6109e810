"""A local stand-in for web push: browsers register here and get accepted messages over a stream.

In production a browser's push service (reached through the Firebase JS SDK) delivers what FCM
accepted, even with no page open. Neither exists on a laptop, so when notifier's FCM endpoint is
this emulator the widget registers the browser here instead: ``register`` mints a token (a
256-bit random secret, the only thing that names a registration), and a page of the site holds a
``stream`` open for it. Every message ``messages:send`` accepts for that token is written to the
stream as a Server-Sent Event carrying the payload FCM would have pushed, and the page hands it to
the site's service worker, which shows it exactly as it shows a real push.

Security: the token travels only in POST bodies (never a URL, never a log line), requests from a
browser origin not in ``allowed_origins`` are refused outright, and JSON is required, which makes
every cross-origin call preflighted, so a page of another origin can neither read a stream nor
register or drop a token. See docs/emulator.md ("Web push stand-in").
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from notifier.emulator.state import STATE_KEY, ReceivedMessage

TOKEN_PREFIX = "webpush-"  # noqa: S105 (a label in front of the random part, not a secret)
PATH_PREFIX = "/emulator/webpush/"
# Messages accepted while no page of the site is open wait here (newest kept, each until its web
# push TTL runs out, as a push service keeps them), so a reader who opens a page soon after still
# gets them.
PENDING_LIMIT = 20
_DEFAULT_TTL_SECONDS = 4 * 7 * 86_400  # FCM's default and maximum
# A comment line now and then keeps proxies and the browser from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
_MAX_TOKEN_LENGTH = 256
_CLOSE = None  # what a stream's queue receives when the emulator shuts down or the token goes


@dataclass
class Registration:
    """One browser's registration: its open streams and what arrived while none was open."""

    streams: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    pending: deque[tuple[float, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=PENDING_LIMIT)
    )

    def take_pending(self, now: float) -> list[dict[str, Any]]:
        """What waited for a page and has not expired, oldest first; the rest is dropped."""
        waiting = [event for expires, event in self.pending if expires > now]
        self.pending.clear()
        return waiting


@dataclass
class WebPushStandIn:
    """Registrations by token, and the browser origins allowed to call the stand-in."""

    allowed_origins: frozenset[str] = frozenset()
    registrations: dict[str, Registration] = field(default_factory=dict)

    def deliver(self, item: ReceivedMessage) -> int:
        """Hand an accepted message to its browser's open streams; how many streams got it.

        Called on the send hot path for every token message, so a token that is not a stand-in
        registration costs one dict lookup.
        """
        registration = self.registrations.get(item.target)
        if registration is None:
            return 0
        event = {"id": item.name, "push": web_push_payload(item.message)}
        if not registration.streams:
            registration.pending.append((time.time() + _ttl_seconds(item.message), event))
            return 0
        for queue in registration.streams:
            queue.put_nowait(event)
        return len(registration.streams)

    def close_all(self) -> None:
        for registration in self.registrations.values():
            for queue in registration.streams:
                queue.put_nowait(_CLOSE)


STAND_IN_KEY = web.AppKey("web_push_stand_in", WebPushStandIn)


def web_push_payload(message: dict[str, Any]) -> dict[str, Any]:
    """What FCM puts in the web push for ``message``: webpush overrides win over common fields.

    The shape the browser receives (``notification``, ``data``, ``fcmOptions``), which is what
    notifier's service worker reads (notifier/static/widget/sw.js).
    """
    webpush = message.get("webpush") or {}
    notification = {**(message.get("notification") or {}), **(webpush.get("notification") or {})}
    payload: dict[str, Any] = {
        "notification": notification,
        "data": {**(message.get("data") or {}), **(webpush.get("data") or {})},
    }
    link = (webpush.get("fcm_options") or {}).get("link")
    if link:
        payload["fcmOptions"] = {"link": link}
    return payload


def _ttl_seconds(message: dict[str, Any]) -> float:
    headers = (message.get("webpush") or {}).get("headers") or {}
    try:
        return float(headers.get("TTL", _DEFAULT_TTL_SECONDS))
    except (TypeError, ValueError):
        return _DEFAULT_TTL_SECONDS


def normalise_origins(origins: Iterable[str]) -> frozenset[str]:
    """Origins as browsers send them in ``Origin``: scheme://host[:port], no trailing slash."""
    return frozenset(o.strip().rstrip("/") for o in origins if o.strip())


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/problem+json"
    )


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """CORS for the stand-in's paths only, and only for the allowed origins.

    A request that carries an ``Origin`` outside the list is refused before the handler runs, so
    even a request the browser would send without a preflight changes nothing. Requests without
    ``Origin`` (curl, tests, firebase-admin) are not from a web page and pass.
    """
    if not request.path.startswith(PATH_PREFIX):
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = request.app[STAND_IN_KEY].allowed_origins
    if origin is not None and origin not in allowed:
        return _problem(403, "Forbidden", "This origin may not use the web push stand-in.")
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    # A streaming response has sent its headers already; it set these itself (see stream).
    if origin is not None and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


async def _token_body(request: web.Request, *, required: bool) -> str | web.Response | None:
    """The ``token`` of a JSON body; a problem response for anything else."""
    if request.content_type != "application/json":
        return _problem(415, "Unsupported Media Type", "Send a JSON body.")
    try:
        body = await request.json()
    except ValueError:
        return _problem(400, "Bad Request", "The body is not JSON.")
    if not isinstance(body, dict):
        return _problem(400, "Bad Request", "The body must be a JSON object.")
    token = body.get("token")
    if token is None and not required:
        return None
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
        return _problem(422, "Unprocessable Content", "token must be a non-empty string.")
    return token


async def register(request: web.Request) -> web.Response:
    """``POST /emulator/webpush/register`` ``{"token"?}``: this browser's token.

    Like the Firebase SDK's ``getToken``: the token it had if the emulator still knows it, else
    a new one (after an emulator restart the widget then moves the subscription to the new one).
    """
    token = await _token_body(request, required=False)
    if isinstance(token, web.Response):
        return token
    stand_in = request.app[STAND_IN_KEY]
    if token is None or token not in stand_in.registrations:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        stand_in.registrations[token] = Registration()
    return web.json_response({"token": token})


async def unregister(request: web.Request) -> web.Response:
    """``POST /emulator/webpush/unregister`` ``{"token"}``: forget it and close its streams."""
    token = await _token_body(request, required=True)
    if isinstance(token, web.Response):
        return token
    assert token is not None  # noqa: S101 (required=True)
    registration = request.app[STAND_IN_KEY].registrations.pop(token, None)
    if registration is not None:
        for queue in registration.streams:
            queue.put_nowait(_CLOSE)
    return web.Response(status=204)


async def stream(request: web.Request) -> web.StreamResponse:
    """``POST /emulator/webpush/stream`` ``{"token"}``: Server-Sent Events of its pushes.

    POST (read with ``fetch``, not ``EventSource``) so that the token is in the body. Each event
    is ``event: push`` with ``{"id": <message name>, "push": <web push payload>}``; 404 for a
    token the emulator does not know.
    """
    token = await _token_body(request, required=True)
    if isinstance(token, web.Response):
        return token
    assert token is not None  # noqa: S101 (required=True)
    app = request.app
    registration = app[STAND_IN_KEY].registrations.get(token)
    if registration is None:
        return _problem(404, "Not Found", "No such registration; register again.")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    origin = request.headers.get("Origin")
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    await response.prepare(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    for waiting in registration.take_pending(time.time()):
        queue.put_nowait(waiting)
    registration.streams.add(queue)
    state = app[STATE_KEY]
    state.stats["webpush_streams_opened"] += 1
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if event is _CLOSE:
                break
            data = json.dumps(event, separators=(",", ":"))
            await response.write(f"event: push\ndata: {data}\n\n".encode())
            state.stats["webpush_delivered"] += 1
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        registration.streams.discard(queue)
    return response


async def _close_streams(app: web.Application) -> None:
    # Open streams never end by themselves; without this a graceful stop would wait them out.
    app[STAND_IN_KEY].close_all()


def add_stand_in(app: web.Application, allowed_origins: Iterable[str]) -> None:
    """Mount the stand-in on the emulator's app, callable from ``allowed_origins`` only."""
    app[STAND_IN_KEY] = WebPushStandIn(allowed_origins=normalise_origins(allowed_origins))
    app.middlewares.append(cors_middleware)
    app.on_shutdown.append(_close_streams)
    for name, handler in (("register", register), ("unregister", unregister), ("stream", stream)):
        app.router.add_post(PATH_PREFIX + name, handler)
        app.router.add_route("OPTIONS", PATH_PREFIX + name, _preflight)


async def _preflight(_: web.Request) -> web.Response:
    return web.Response(status=204)  # the middleware answers; this only gives the route a handler
