"""FCM's error bodies: a ``google.rpc.Status`` with an ``FcmError`` detail, as Google sends them.

firebase-admin decides which exception to raise from the ``status`` string and the ``errorCode``
of the ``type.googleapis.com/google.firebase.fcm.v1.FcmError`` detail, so these shapes must match
Google's byte for byte where the SDK looks, or the SDK would classify emulator errors differently
from real ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

# google.rpc.Code numbers for the canonical status names that FCM answers with.
RPC_CODES = {
    "INVALID_ARGUMENT": 3,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}

# FCM error code -> (HTTP status, canonical status), as documented for the HTTP v1 API.
FCM_ERRORS: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "UNREGISTERED": (404, "NOT_FOUND"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}

INVALID_TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"  # noqa: S105
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


@dataclass(frozen=True, slots=True)
class FcmProblem:
    """A refusal to send, before it is rendered: which FCM code, why, and which field."""

    fcm_code: str
    message: str
    field: str | None = None

    @property
    def http_status(self) -> int:
        return FCM_ERRORS[self.fcm_code][0]


def fcm_error_body(problem: FcmProblem) -> dict[str, object]:
    """The JSON body FCM answers with for ``problem``."""
    status_name = FCM_ERRORS[problem.fcm_code][1]
    details: list[dict[str, object]] = [{"@type": FCM_ERROR_TYPE, "errorCode": problem.fcm_code}]
    if problem.field is not None:
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": problem.field, "description": problem.message}],
            }
        )
    return {
        "error": {
            "code": problem.http_status,
            "message": problem.message,
            "status": status_name,
            "details": details,
        }
    }


def fcm_error_response(problem: FcmProblem, retry_after: int | None = None) -> web.Response:
    """An aiohttp response carrying FCM's error body (and Retry-After when given)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(
        status=problem.http_status,
        body=json.dumps(fcm_error_body(problem)).encode(),
        content_type="application/json",
        headers=headers,
    )


def rpc_error_response(http_status: int, status_name: str, message: str) -> web.Response:
    """A plain ``google.rpc.Status`` error without an FCM detail (auth and routing errors)."""
    body = {"error": {"code": http_status, "message": message, "status": status_name}}
    return web.Response(
        status=http_status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        if http_status == 401
        else None,
    )
