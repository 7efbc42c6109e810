"""Schemathesis over every operation of the live ``/openapi.yaml``: no 5xx, and the spec is true.

The app runs in-process on SQLite (no PostgreSQL, Redis, Celery or emulator), so this belongs to
the fast suite. An admin key reaches every editor and ops route, and a ``before_call`` hook signs
each webhook request with the test secret, so the fuzzer gets past the signature into the event
intake instead of stopping at 401. Examples are bounded and the seed fixed, so the run is quick
and a failure reproduces; set ``FUZZ_EXAMPLES`` (per operation) and ``FUZZ_SEED`` to search
harder or elsewhere.

Schemathesis's default checks apply (no 5xx, documented status codes, content types, headers
and bodies, invalid input refused, valid input accepted), plus one of this API's own: every
error is RFC 9457 problem+json whose ``status`` is the response's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from requests.structures import CaseInsensitiveDict

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.http import openapi
from notifier.http.app import create_app
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from tests.conftest import make_settings

SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})
SECRET = "whsec_" + base64.b64encode(b"fuzzing-secret-of-24-byte").decode()
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# High enough that the fuzzer is never throttled; the limits themselves are tested elsewhere.
UNTHROTTLED = ";".join(
    f"{scope}=100000/minute"
    for scope in (
        "subscriptions",
        "lookup",
        "events",
        "opens",
        "subscription_token",
        "auth_failures",
    )
)


class _NoBroker:
    """Publishing is the workers' business; the fuzzer only needs the commit."""

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        pass


@pytest.fixture(scope="module")
def fuzz_app(
    sqlite_file_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, str]]:
    """One app for the whole run (Hypothesis calls the test many times per fixture)."""
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz"),
        database_url=sqlite_file_url,
        webhook_secrets=SECRET,
        rate_limits=UNTHROTTLED,
    )
    runtime = Runtime.start(settings)
    runtime.publisher = _NoBroker()
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "admin", "fuzzer")
    app = create_app(runtime=runtime)
    APP_UNDER_TEST.app, APP_UNDER_TEST.runtime, APP_UNDER_TEST.admin_key = app, runtime, key
    yield app, key
    APP_UNDER_TEST.app, APP_UNDER_TEST.runtime, APP_UNDER_TEST.admin_key = None, None, ""
    runtime.close()


class _AppUnderTest:
    """The WSGI app the schema sends to; the module fixture plugs the real one in.

    The schema is loaded at import (so pytest lists one test per operation) but the app needs a
    database, which only a fixture may create.
    """

    app: Flask | None = None
    runtime: Runtime | None = None
    admin_key: str = ""

    def fresh_key(self) -> str:
        assert self.runtime is not None
        with transaction(self.runtime.sessions) as session:
            key, _ = create_key(session, "admin", "fuzzer")
        return key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "the fuzz_app fixture did not run"
        return self.app(environ, start_response)


APP_UNDER_TEST = _AppUnderTest()

# The description the server serves at /openapi.yaml (tests/test_openapi.py proves the bytes are
# the same), loaded at import so that pytest lists one test per operation.
schema = schemathesis.openapi.from_file(
    openapi.spec_bytes().decode("utf-8"),
    config=schemathesis.Config.from_dict(
        {
            "seed": int(os.environ.get("FUZZ_SEED", "20261202")),
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        }
    ),
)
schema.app = APP_UNDER_TEST


@schema.auth(refresh_interval=None)
class AdminKey:
    """An admin key reaches every editor and ops operation; readers' routes ignore it."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return APP_UNDER_TEST.admin_key

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers or {})
        headers["Authorization"] = f"Bearer {data}"
        case.headers = headers


def _served_apps_only(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with any ``app`` or ``apps`` (inside an event's ``data`` too) as ``default``."""
    body = dict(body)
    if isinstance(body.get("app"), str):
        body["app"] = "default"
    if isinstance(body.get("apps"), list) and body["apps"]:
        body["apps"] = ["default"]
    if isinstance(body.get("data"), dict):
        body["data"] = _served_apps_only(body["data"])
    return body


@schemathesis.hook  # before_call hooks are global in Schemathesis; this one minds its own app
def before_call(
    ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]
) -> None:
    """Make generated requests as real clients make them where the schema cannot say how."""
    if case.operation.app is not APP_UNDER_TEST:
        return
    headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(case.headers or {})
    if isinstance(case.body, dict) and isinstance(case.body.get("timezone"), str):
        # Which names exist is the server's zone database (the description says so, and
        # tests/test_openapi.py checks the 422); a schema cannot list it, so the fuzzer gets one.
        case.body = {**case.body, "timezone": "Asia/Jerusalem"}
    if isinstance(case.body, dict):
        # Which apps exist is the deployment's apps file (the description says the server checks
        # it, and tests/test_apps_*.py check the 422): the fuzzer names the one this app serves.
        case.body = _served_apps_only(case.body)
    if isinstance(case.body, dict) and isinstance(case.body.get("quiet_hours"), dict):
        # Quiet hours need the device's zone, sent with them or stored before (a documented
        # 422 that depends on the stored device, which a schema cannot say): one is sent.
        case.body = {**case.body, "timezone": "Asia/Jerusalem"}
    if (case.method.upper(), case.operation.path) == ("POST", "/v1/test-devices") and headers.get(
        "Authorization"
    ) == f"Bearer {APP_UNDER_TEST.admin_key}":
        # A key holds at most 20 test devices (a documented 422); each registration gets a key
        # with room, or the fuzzer's 21st valid request would look like a false refusal.
        headers["Authorization"] = f"Bearer {APP_UNDER_TEST.fresh_key()}"
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 200:
        # Reusing a key with another body is a documented 422 that a stateless fuzzer cannot
        # expect; one key per (key, body) keeps the replay path without that false alarm.
        digest = hashlib.sha256((key + json.dumps(case.body, default=str)).encode()).hexdigest()
        headers["Idempotency-Key"] = digest
    if case.operation.path == "/v1/events" and headers.keys() >= SIGNATURE_HEADERS:
        # Signed over the exact bytes sent. A case that leaves a signature header out stays
        # unsigned: its 401 is what the fuzzer should see.
        raw = _raw_body(case)
        kwargs["data"] = raw
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp = int(time.time())
        headers["webhook-id"] = webhook_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign_webhook(SECRET, webhook_id, timestamp, raw)
    case.headers = headers


def _raw_body(case: schemathesis.Case) -> bytes:
    transport = case.as_transport_kwargs()
    if "json" in transport:
        return json.dumps(transport["json"]).encode()
    data = transport.get("data") or b""
    return data.encode() if isinstance(data, str) else bytes(data)


def problem_json_on_errors(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A 4xx or 5xx answer is a problem+json document that repeats its own status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0] == "application/problem+json", content_type
    problem = json.loads(response.content)
    assert problem["status"] == response.status_code, problem
    assert problem["title"] and problem["type"], problem
    return True


@schema.parametrize()
def test_no_input_makes_a_server_error_or_breaks_the_spec(
    case: schemathesis.Case, fuzz_app: tuple[Flask, str]
) -> None:
    case.call_and_validate(additional_checks=[problem_json_on_errors])
