"""Every JSON route answers hostile bodies with a 4xx problem+json, never a 500 or a silent cut.

Each bad body is sent to every route that takes JSON, the signed webhook included (it is
signed, so the parser is reached rather than the signature check). Runs on SQLite only.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.http.app import create_app
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import token

SECRET = "whsec_" + base64.b64encode(b"bad-bodies-secret-24-byte").decode()
MAX_BODY = 16 * 1024
MAX_WEBHOOK = 32 * 1024
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


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    valid: Callable[[], dict[str, Any]]
    editor: bool = False
    signed: bool = False

    @property
    def cap(self) -> int:
        return MAX_WEBHOOK if self.signed else MAX_BODY

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _article() -> dict[str, Any]:
    return {
        "type": "article.published",
        "data": {
            "id": uuid.uuid4().hex,
            "url": "https://news.example/a",
            "headline": "Quiet day",
            "topics": ["world"],
            "breaking": False,
        },
    }


ROUTES = [
    Route(
        "POST",
        "/v1/subscriptions",
        lambda: {"token": token(), "platform": "android", "topics": ["israel"]},
    ),
    Route("DELETE", "/v1/subscriptions", lambda: {"token": token()}),
    Route("POST", "/v1/subscriptions/lookup", lambda: {"token": token()}),
    Route("PUT", "/v1/subscriptions/token", lambda: {"old_token": token(), "new_token": token()}),
    Route(
        "POST",
        "/v1/alerts",
        lambda: {
            "headline": "Sirens",
            "url": "https://news.example/a",
            "topics": ["israel"],
            "hold_seconds": 600,
        },
        editor=True,
    ),
    Route("POST", "/v1/test-devices", lambda: {"token": token()}, editor=True),
    Route("DELETE", "/v1/test-devices", lambda: {"token": token()}, editor=True),
    Route("POST", "/v1/events", _article, signed=True),
]


class _NoBroker:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        pass


@dataclass
class Api:
    client: FlaskClient
    editor_key: str

    def send(
        self,
        route: Route,
        raw: bytes,
        *,
        content_type: str = "application/json",
        chunked: bool = False,
    ) -> TestResponse:
        """Send ``raw`` as the body: declared with a Content-Length, or chunked without one."""
        headers = {"Content-Type": content_type}
        if route.editor:
            headers["Authorization"] = f"Bearer {self.editor_key}"
        if route.signed:
            webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
            headers["webhook-id"] = webhook_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign_webhook(SECRET, webhook_id, timestamp, raw)
        if not chunked:
            return self.client.open(route.path, method=route.method, data=raw, headers=headers)
        headers["Transfer-Encoding"] = "chunked"
        response = self.client.open(
            route.path,
            method=route.method,
            input_stream=io.BytesIO(raw),
            headers=headers,
            # What a server that de-chunks the body (gunicorn, werkzeug) tells the app.
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.request.content_length is None
        return response


@pytest.fixture(scope="module")
def api(sqlite_file_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = make_settings(
        tmp_path_factory.mktemp("bad-bodies"),
        database_url=sqlite_file_url,
        webhook_secrets=SECRET,
        max_body_bytes=str(MAX_BODY),
        webhook_max_bytes=str(MAX_WEBHOOK),
        rate_limits=UNTHROTTLED,
    )
    runtime = Runtime.start(settings)
    runtime.publisher = _NoBroker()
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "bad bodies")
    app = create_app(runtime=runtime)
    yield Api(app.test_client(), key)
    runtime.close()


def assert_problem(response: TestResponse, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["status"] == status


def with_first_field(route: Route, raw_value: bytes) -> bytes:
    """The route's valid body with its first field's value replaced by raw JSON bytes."""
    body = route.valid()
    first = next(iter(body))
    marker = "__REPLACED__"
    body[first] = marker
    return json.dumps(body).encode().replace(f'"{marker}"'.encode(), raw_value)


def each_route(test: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.parametrize("route", ROUTES, ids=str)(test)


# --- the controls: valid bodies are accepted, so the refusals below are about the input ------


@each_route
def test_a_valid_body_is_accepted_declared_or_chunked(api: Api, route: Route) -> None:
    for chunked in (False, True):
        raw = json.dumps(route.valid()).encode()
        response = api.send(route, raw, chunked=chunked)
        assert response.status_code < 300 or response.status_code == 404, response.json


@each_route
def test_utf8_may_be_declared(api: Api, route: Route) -> None:
    raw = json.dumps(route.valid()).encode()
    response = api.send(route, raw, content_type="application/json; charset=UTF-8")
    assert response.status_code < 300 or response.status_code == 404, response.json


# --- nesting, numbers and text ----------------------------------------------------------------


@each_route
@pytest.mark.parametrize(
    "raw",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000],
    ids=["arrays", "objects"],
)
def test_json_nested_too_deeply_to_read_is_400(api: Api, route: Route, raw: bytes) -> None:
    assert_problem(api.send(route, raw), 400)


@each_route
def test_json_nested_deep_but_readable_is_422(api: Api, route: Route) -> None:
    assert_problem(api.send(route, with_first_field(route, b"[" * 900 + b"]" * 900)), 422)


@each_route
@pytest.mark.parametrize(
    "number",
    [b"1e400", b"-1e400", b"1" + b"0" * 400, b"492.5"],
    ids=["1e400", "-1e400", "10**400", "fraction"],
)
def test_numbers_where_they_do_not_belong_are_422(api: Api, route: Route, number: bytes) -> None:
    assert_problem(api.send(route, with_first_field(route, number)), 422)


@each_route
@pytest.mark.parametrize(
    "raw_value", [b"1" + b"0" * 5000, b"NaN", b"Infinity"], ids=["5001-digits", "NaN", "Infinity"]
)
def test_numbers_json_cannot_hold_are_400(api: Api, route: Route, raw_value: bytes) -> None:
    assert_problem(api.send(route, with_first_field(route, raw_value)), 400)


@each_route
def test_invalid_utf8_is_400(api: Api, route: Route) -> None:
    assert_problem(api.send(route, with_first_field(route, b'"\xff\xfe\xc3("')), 400)


@each_route
@pytest.mark.parametrize(
    "raw_value",
    [b'"\\ud800"', b'"abc\\udfff"', b'"a\\u0000b"', b'"\x00"'],
    ids=["lone-high-surrogate", "lone-low-surrogate", "escaped-NUL", "raw-NUL"],
)
def test_unstorable_text_is_refused(api: Api, route: Route, raw_value: bytes) -> None:
    response = api.send(route, with_first_field(route, raw_value))
    # A raw control character inside a string is not JSON at all; the rest is JSON we refuse.
    assert_problem(response, 400 if raw_value == b'"\x00"' else 422)


@each_route
@pytest.mark.parametrize(
    "raw", [b'{"\\ud800": 1}', b'{"\\u0000": 1}'], ids=["surrogate-key", "NUL-key"]
)
def test_unstorable_member_names_are_422(api: Api, route: Route, raw: bytes) -> None:
    """The problem names the bad member; it must still serialise (escaped), not fail."""
    assert_problem(api.send(route, raw), 422)


@pytest.mark.parametrize(
    ("route", "field"),
    [(ROUTES[4], "headline"), (ROUTES[4], "body"), (ROUTES[7], "headline"), (ROUTES[7], "summary")],
    ids=["alert-headline", "alert-body", "article-headline", "article-summary"],
)
def test_nul_in_stored_free_text_is_422(api: Api, route: Route, field: str) -> None:
    body = route.valid()
    target = body["data"] if route.signed else body
    target[field] = "Sirens\x00 in the north"
    assert_problem(api.send(route, json.dumps(body).encode()), 422)


@each_route
def test_a_very_long_string_is_422(api: Api, route: Route) -> None:
    assert_problem(api.send(route, with_first_field(route, b'"' + b"x" * 12_000 + b'"')), 422)


@each_route
def test_a_very_long_array_is_422(api: Api, route: Route) -> None:
    items = b"[" + b",".join([b'"israel"'] * 1500) + b"]"
    assert_problem(api.send(route, with_first_field(route, items)), 422)


@each_route
def test_a_json_value_that_is_not_an_object_is_422(api: Api, route: Route) -> None:
    assert_problem(api.send(route, b'["not", "an", "object"]'), 422)


# --- size and framing -------------------------------------------------------------------------


@each_route
def test_a_chunked_body_over_the_cap_is_413_not_cut_and_parsed(api: Api, route: Route) -> None:
    """Valid JSON, then padding past the cap: a cut body would parse, and be accepted."""
    raw = json.dumps(route.valid()).encode() + b" " * route.cap
    assert_problem(api.send(route, raw, chunked=True), 413)


@each_route
def test_a_large_chunked_body_is_413(api: Api, route: Route) -> None:
    assert_problem(api.send(route, b"x" * (10 * route.cap), chunked=True), 413)


@each_route
def test_a_declared_body_over_the_cap_is_413(api: Api, route: Route) -> None:
    raw = json.dumps(route.valid()).encode() + b" " * route.cap
    assert_problem(api.send(route, raw), 413)


@each_route
def test_a_chunked_body_under_the_cap_with_trailing_garbage_is_400(api: Api, route: Route) -> None:
    raw = json.dumps(route.valid()).encode() + b" garbage"
    assert_problem(api.send(route, raw, chunked=True), 400)


# --- media type and charset -------------------------------------------------------------------


@each_route
@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", "utf-16", "bogus"])
def test_a_charset_other_than_utf8_is_415(api: Api, route: Route, charset: str) -> None:
    raw = json.dumps(route.valid()).encode("latin-1")
    response = api.send(route, raw, content_type=f"application/json; charset={charset}")
    assert_problem(response, 415)


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.signed], ids=str)
def test_a_body_that_is_not_json_is_415(api: Api, route: Route) -> None:
    assert_problem(api.send(route, b"token=x", content_type="text/plain"), 415)
