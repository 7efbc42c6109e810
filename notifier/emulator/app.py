"""The emulator's aiohttp application: FCM's send endpoint, the token endpoint, inspection, inbox.

The send handler is the hot path (benchmarks push thousands of requests per second through it),
so it does only what FCM's answer depends on: a cached bearer check, one JSON parse, validation,
and an append to the ring of received messages.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from notifier.emulator import inbox
from notifier.emulator.errors import (
    INVALID_TOKEN_MESSAGE,
    UNAUTHENTICATED_MESSAGE,
    FcmProblem,
    fcm_error_response,
    rpc_error_response,
)
from notifier.emulator.oauth import AccessTokenChecker, token_endpoint
from notifier.emulator.quota import parse_project_quota_body
from notifier.emulator.state import DEFAULT_CAPACITY, STATE_KEY, EmulatorState, Faults
from notifier.emulator.validation import parse_send_request
from notifier.emulator.webpush import STAND_IN_KEY, add_stand_in

# Token prefixes that make the emulator answer as FCM does for such a device (see docs/emulator.md).
TOKEN_CONVENTIONS: tuple[tuple[str, FcmProblem], ...] = (
    ("unregistered-", FcmProblem("UNREGISTERED", "Requested entity was not found.")),
    ("invalid-", FcmProblem("INVALID_ARGUMENT", INVALID_TOKEN_MESSAGE, "message.token")),
    (
        "mismatch-",
        FcmProblem("SENDER_ID_MISMATCH", "SenderId mismatch"),
    ),
    (
        "thirdparty-",
        FcmProblem(
            "THIRD_PARTY_AUTH_ERROR",
            "Auth error from APNS or Web Push Service",
        ),
    ),
)

_FAULT_PROBLEMS = {
    "UNAVAILABLE": FcmProblem("UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": FcmProblem("INTERNAL", "Internal error encountered."),
    "QUOTA_EXCEEDED": FcmProblem(
        "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send messages'."
    ),
}
# FCM asks clients to wait at least a minute after QUOTA_EXCEEDED even when it says nothing.
_DEFAULT_QUOTA_RETRY_AFTER = 60

_CHECKER = web.AppKey("checker", AccessTokenChecker)
_PROJECT = web.AppKey("project_id", str)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


async def send_message(request: web.Request) -> web.Response:
    """``POST /v1/projects/{project}/messages:send``, answering exactly as FCM would."""
    app = request.app
    state = app[STATE_KEY]
    faults = state.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    project = request.match_info["project"]
    if not app[_CHECKER].is_valid(request.headers.get("Authorization"), revoked=state.revoked_tags):
        state.count(project, "UNAUTHENTICATED")
        return rpc_error_response(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE)
    expected = app[_PROJECT]
    if expected and project != expected:
        state.count(project, "PERMISSION_DENIED")
        return rpc_error_response(
            403,
            "PERMISSION_DENIED",
            f"Permission 'cloudmessaging.messages.create' denied on resource "
            f"'//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist).",
        )
    injected = faults.pick()
    if injected is not None:
        state.count(project, injected)
        retry_after = faults.retry_after_seconds
        if injected == "QUOTA_EXCEEDED" and retry_after is None:
            retry_after = _DEFAULT_QUOTA_RETRY_AFTER
        return fcm_error_response(_FAULT_PROBLEMS[injected], retry_after)
    # After the injected faults (a server failing before it counts anything), before the message
    # is read: FCM counts every send it looks at against the quota, 4xx answers included.
    quota_retry_after = state.quota.admit(project)
    if quota_retry_after is not None:
        state.count(project, "QUOTA_EXCEEDED")
        return fcm_error_response(_FAULT_PROBLEMS["QUOTA_EXCEEDED"], quota_retry_after)

    parsed = parse_send_request(await request.read())
    if isinstance(parsed, FcmProblem):
        state.count(project, parsed.fcm_code)
        return fcm_error_response(parsed)
    if parsed.target_kind in ("token", "fid"):
        for prefix, problem in TOKEN_CONVENTIONS:
            if parsed.target.startswith(prefix):
                state.count(project, problem.fcm_code)
                return fcm_error_response(problem)
    if parsed.validate_only:
        state.count(project, "validate_only")
        return _json({"name": f"projects/{project}/messages/fake_message_id"})
    name = f"projects/{project}/messages/{_next_message_id()}"
    item = state.record(name, parsed.target_kind, parsed.target, parsed.platform, parsed.message)
    state.count(project, "accepted")
    if parsed.target_kind == "token":
        app[STAND_IN_KEY].deliver(item)
    return _json({"name": name})


_IDS = itertools.count(1)
_ID_PREFIX = secrets.token_hex(4)


def _next_message_id() -> str:
    # Shaped like FCM's ids ("0:<time>%<hex>"); unique within and across emulator runs.
    return f"0:{_ID_PREFIX}{next(_IDS):012d}%{_ID_PREFIX}"


async def set_faults(request: web.Request) -> web.Response:
    """``POST /emulator/faults``: replace the injected faults; ``{}`` clears them."""
    try:
        faults = Faults.from_json(await request.json())
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    request.app[STATE_KEY].faults = faults
    return _json(faults.to_json())


async def get_faults(request: web.Request) -> web.Response:
    return _json(request.app[STATE_KEY].faults.to_json())


async def set_quota(request: web.Request) -> web.Response:
    """``POST /emulator/quota {"per_minute": N|0|null, "project"?: id}``.

    Without ``project``: a new quota for every project, every window emptied. With it: that
    project's own quota (each app its own Firebase project), the other projects untouched.
    """
    try:
        per_minute, project = parse_project_quota_body(await request.json())
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    quota = request.app[STATE_KEY].quota
    if project is None:
        quota.reset(per_minute)
    else:
        quota.set_project(project, per_minute)
    return _json(quota.to_json())


async def set_revoked(request: web.Request) -> web.Response:
    """``POST /emulator/oauth/revoked {"accounts": [email, ...]}``: the fault of revoked
    credentials. Those service accounts get ``invalid_grant`` from the token endpoint, and the
    access tokens already issued to them are refused (401), as after a key is deleted in the
    Cloud console; ``[]`` restores them all.
    """
    try:
        body = await request.json()
    except ValueError:
        body = None
    accounts = (
        body.get("accounts") if isinstance(body, dict) and set(body) == {"accounts"} else None
    )
    if not isinstance(accounts, list) or not all(isinstance(a, str) and a for a in accounts):
        return _json({"error": 'expected {"accounts": [service account email, ...]}'}, 400)
    state = request.app[STATE_KEY]
    state.revoke(accounts)
    return _json({"accounts": sorted(state.revoked_accounts)})


async def get_revoked(request: web.Request) -> web.Response:
    return _json({"accounts": sorted(request.app[STATE_KEY].revoked_accounts)})


async def get_quota(request: web.Request) -> web.Response:
    """``GET /emulator/quota``: the quota and, per project, sends in the window and refusals."""
    return _json(request.app[STATE_KEY].quota.to_json())


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer")
    return min(int(raw), maximum)


def _listing(state: EmulatorState, since: int | None, limit: int) -> dict[str, Any]:
    items = state.newest(limit) if since is None else state.since(since, limit)
    return {
        "messages": [dict(item.to_json(), display=inbox.display(item)) for item in items],
        "last_seq": state.last_seq,
        "stored": state.stored,
    }


async def list_messages(request: web.Request) -> web.Response:
    """``GET /emulator/messages[?since=SEQ][&limit=N]``: accepted messages, oldest first."""
    state = request.app[STATE_KEY]
    limit = _int_param(request, "limit", 1000, state.capacity)
    since = _int_param(request, "since", 0, 2**63) if "since" in request.query else None
    return _json(_listing(state, since, limit))


async def search_messages(request: web.Request) -> web.Response:
    """``POST /emulator/messages/search`` ``{"token"|"topic", "since"?, "limit"?}``.

    A POST body rather than a query string so that device tokens stay out of URLs and logs.
    """
    try:
        body = await request.json()
    except ValueError:
        return _json({"error": "expected a JSON object"}, status=400)
    if not isinstance(body, dict):
        return _json({"error": "expected a JSON object"}, status=400)
    state = request.app[STATE_KEY]
    since, limit = body.get("since", 0), body.get("limit", state.capacity)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (since, limit)):
        return _json({"error": "since and limit must be non-negative integers"}, status=400)
    limit = min(limit, state.capacity)
    wanted = {k: body[k] for k in ("token", "fid", "topic", "condition") if k in body}
    matches = [
        item
        for item in state
        if item.seq > since
        and all(item.target_kind == k and item.target == v for k, v in wanted.items())
    ][:limit]
    return _json(
        {
            "messages": [dict(item.to_json(), display=inbox.display(item)) for item in matches],
            "last_seq": state.last_seq,
        }
    )


async def clear_messages(request: web.Request) -> web.Response:
    """``DELETE /emulator/messages``: forget the received messages (the counters stay)."""
    request.app[STATE_KEY].clear_messages()
    return web.Response(status=204)


async def get_stats(request: web.Request) -> web.Response:
    """``GET /emulator/stats``: counts by outcome, ring occupancy, faults, stand-in browsers."""
    stand_in = request.app[STAND_IN_KEY]
    return _json(
        dict(
            request.app[STATE_KEY].stats_json(),
            webpush={
                "registrations": len(stand_in.registrations),
                "streams": sum(len(r.streams) for r in stand_in.registrations.values()),
            },
        )
    )


def create_emulator_app(
    project_id: str | None = None,
    capacity: int = DEFAULT_CAPACITY,
    allowed_origins: Iterable[str] = (),
    quota_per_minute: int | None = None,
) -> web.Application:
    """The emulator as an aiohttp application.

    ``project_id`` pins the one project the emulator serves (others get 403 like a foreign
    project would); None accepts any project, which suits several apps sharing one emulator.
    ``capacity`` bounds how many received messages are kept for inspection.
    ``allowed_origins`` are the pages (notifier's API, sites embedding the widget) whose browsers
    may use the web push stand-in (:mod:`notifier.emulator.webpush`); none by default.
    ``quota_per_minute`` refuses, per project, sends over that many in any 60 s with FCM's 429
    QUOTA_EXCEEDED (:mod:`notifier.emulator.quota`); None or 0 enforces none.
    """
    app = web.Application(client_max_size=1024 * 1024)
    app[STATE_KEY] = EmulatorState(capacity=capacity)
    app[STATE_KEY].quota.reset(quota_per_minute)
    app[_CHECKER] = AccessTokenChecker()
    app[_PROJECT] = project_id or ""
    app.router.add_post("/token", token_endpoint)
    app.router.add_post("/v1/projects/{project}/messages:send", send_message)
    app.router.add_post("/emulator/faults", set_faults)
    app.router.add_get("/emulator/faults", get_faults)
    app.router.add_post("/emulator/quota", set_quota)
    app.router.add_get("/emulator/quota", get_quota)
    app.router.add_post("/emulator/oauth/revoked", set_revoked)
    app.router.add_get("/emulator/oauth/revoked", get_revoked)
    app.router.add_get("/emulator/messages", list_messages)
    app.router.add_delete("/emulator/messages", clear_messages)
    app.router.add_post("/emulator/messages/search", search_messages)
    app.router.add_get("/emulator/stats", get_stats)
    app.router.add_get("/", inbox.inbox_page)
    add_stand_in(app, allowed_origins)
    return app
