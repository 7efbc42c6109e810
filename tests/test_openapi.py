"""The OpenAPI description stays true: valid, route for route, and rule for rule on subscriptions.

A description that drifts from the server is worse than none, because clients are generated from
it. So the routes are compared with the app's url_map in both directions, the roles in
``x-required-roles`` are tried with real keys, the subscription request schemas are checked
against the server on the same good and bad bodies, and real responses are validated against the
documented response schemas.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import TypeAdapter, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from notifier.http import openapi
from notifier.http.alerts import CreateAlertRequest
from notifier.http.app import create_app
from notifier.intake.events import WebUrl
from notifier.runtime import Runtime
from notifier.subscriptions.topics import load_catalogue
from tests.conftest import make_settings
from tests.factories import ROLES, auth, token

REPO = Path(__file__).resolve().parent.parent
SPEC_URI = "urn:notifier:openapi"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Routes the description must cover; pages and their assets may be listed but need not be.
REQUIRED_EXACT = {"/metrics", "/livez", "/readyz", "/openapi.yaml", "/docs/api"}
REQUIRED_PREFIXES = ("/v1/", "/o/")


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(openapi.spec_bytes())
    return loaded


def with_openapi(app: Flask) -> Flask:
    """The app with the openapi blueprint, whether or not ``create_app`` registers it yet."""
    if "openapi.spec" not in app.view_functions:
        app.register_blueprint(openapi.bp)
    return app


@pytest.fixture
def sqlite_app(sqlite_file_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The full app on SQLite only: routes do not depend on the database backend."""
    runtime = Runtime.start(make_settings(tmp_path, database_url=sqlite_file_url))
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    yield with_openapi(app)
    runtime.close()


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return with_openapi(app).test_client()


class RecordingPublisher:
    """Stands in for the broker so creating an alert publishes nothing."""

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        pass


def validator(spec: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """A JSON Schema validator for ``#/components/schemas/<name>`` with the spec's refs resolved."""
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry
    )


def response_validator(
    spec: dict[str, Any], path: str, method: str, status: int
) -> Draft202012Validator:
    """The validator of one documented response body (refs to responses followed)."""
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = next(iter(response["content"].values()))
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    return Draft202012Validator(_absolute_refs(content["schema"]), registry=registry)


def _absolute_refs(node: Any) -> Any:
    """Point an inline schema's ``#/...`` refs at the spec resource."""
    if isinstance(node, dict):
        return {
            k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _absolute_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


def assert_documented(spec: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The status is documented for the operation and the body matches its schema."""
    responses = spec["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code)
    errors = list(
        response_validator(spec, path, method, response.status_code).iter_errors(response.json)
    )
    assert not errors, [e.message for e in errors]


def app_operations(app: Flask) -> dict[str, set[str]]:
    """``{openapi path: methods}`` of the app's url_map, ``<x>``/``<conv:x>`` as ``{x}``."""
    operations: dict[str, set[str]] = defaultdict(set)
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations[path] |= set(rule.methods or ()) - IGNORED_METHODS
    return operations


def spec_operations(spec: dict[str, Any]) -> dict[str, set[str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {path: {m.upper() for m in item if m in methods} for path, item in spec["paths"].items()}


# --- (a) a valid OpenAPI 3.1 document -----------------------------------------------------------


def test_the_description_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)  # picks the 3.1 validator from the document's own "openapi" field
    assert spec["openapi"].startswith("3.1.")


def test_the_version_is_the_package_version(spec: dict[str, Any]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert spec["info"]["version"] == pyproject["project"]["version"]
    assert spec["info"]["title"] == "notifier"


def test_every_problem_answer_is_problem_json(spec: dict[str, Any]) -> None:
    """4xx/5xx bodies are problem+json with the shared schema (readyz's 503 is the exception)."""
    refs = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or path == "/readyz":
                    continue
                if "$ref" in response:
                    response = refs[response["$ref"].rsplit("/", 1)[1]]
                content = response["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)
                schema = content["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, method, status)


# --- (b) the same routes and methods as the app ---------------------------------------------------


def test_every_api_route_is_described_with_its_methods(
    sqlite_app: Flask, spec: dict[str, Any]
) -> None:
    described = spec_operations(spec)
    required = {
        path: methods
        for path, methods in app_operations(sqlite_app).items()
        if path in REQUIRED_EXACT or path.startswith(REQUIRED_PREFIXES)
    }
    assert {"/v1/subscriptions", "/v1/events", "/o/{alert_id}"} <= required.keys()
    missing = {p: sorted(m) for p, m in required.items() if described.get(p) != m}
    assert not missing, f"routes not described (or with other methods): {missing}"


def test_every_described_path_exists_in_the_app(sqlite_app: Flask, spec: dict[str, Any]) -> None:
    served = app_operations(sqlite_app)
    stale = {
        p: sorted(m) for p, m in spec_operations(spec).items() if not m <= served.get(p, set())
    }
    assert not stale, f"described but not served: {stale}"
    wrong = {p: sorted(served[p]) for p, m in spec_operations(spec).items() if served[p] != m}
    assert not wrong, f"methods differ from the app's: {wrong}"


def test_roles_are_the_ones_the_server_enforces(
    api: FlaskClient, spec: dict[str, Any], keys: dict[str, str]
) -> None:
    """No key is a 401; each role gets a 403 exactly when ``x-required-roles`` leaves it out."""
    checked = 0
    for path, item in spec["paths"].items():
        url = path.replace("{alert_id}", str(uuid.uuid4()))
        for method, operation in item.items():
            if method == "parameters" or "x-required-roles" not in operation:
                continue
            assert operation["security"] == [{"apiKey": []}], (path, method)
            assert {"401", "403"} <= operation["responses"].keys(), (path, method)
            allowed = set(operation["x-required-roles"]) | {"admin"}
            assert api.open(url, method=method.upper()).status_code == 401, (path, method)
            for role in ROLES:
                status = api.open(url, method=method.upper(), headers=auth(keys[role])).status_code
                assert (status == 403) == (role not in allowed), (path, method, role, status)
                checked += 1
    assert checked >= 3 * 11  # every editor and ops operation


# --- (c) request schemas reject and accept what the server does ---------------------------------

T = token()
CASES: list[tuple[str, str, str, Any, bool]] = [
    # method, path, schema, body, valid
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": ["israel"]}, True),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "web", "topics": ["israel", "world"], "locale": "he-IL",
      "timezone": "Asia/Jerusalem"}, True),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "ios", "topics": ["israel"], "locale": None, "timezone": None}, True),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "ios", "topics": ["israel"] * 100}, True),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "ios", "topics": ["israel"] * 101}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"platform": "android", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": "short", "platform": "android", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": "has spaces in it", "platform": "android", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": "x" * 1025, "platform": "android", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": 12345678, "platform": "android", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "palm", "topics": ["israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": []}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": "israel"}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": [1]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": ["Israel"]}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": ["israel"], "state": "dead"}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": ["israel"], "locale": "english!"}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest",
     {"token": T, "platform": "android", "topics": ["israel"], "timezone": "x" * 65}, False),
    ("POST", "/v1/subscriptions", "SubscribeRequest", ["not", "an", "object"], False),
    ("DELETE", "/v1/subscriptions", "UnsubscribeRequest", {"token": T}, True),
    ("DELETE", "/v1/subscriptions", "UnsubscribeRequest", {"token": T, "topics": None}, True),
    ("DELETE", "/v1/subscriptions", "UnsubscribeRequest", {"token": T, "topics": ["israel"]}, True),
    ("DELETE", "/v1/subscriptions", "UnsubscribeRequest", {"token": T, "topics": []}, False),
    ("DELETE", "/v1/subscriptions", "UnsubscribeRequest", {"token": T, "all": True}, False),
    ("POST", "/v1/subscriptions/lookup", "LookupRequest", {"token": T}, True),
    ("POST", "/v1/subscriptions/lookup", "LookupRequest", {"token": None}, False),
    ("POST", "/v1/subscriptions/lookup", "LookupRequest", {}, False),
    ("PUT", "/v1/subscriptions/token", "RotateTokenRequest",
     {"old_token": T, "new_token": token()}, True),
    ("PUT", "/v1/subscriptions/token", "RotateTokenRequest", {"old_token": T}, False),
    ("PUT", "/v1/subscriptions/token", "RotateTokenRequest",
     {"old_token": T, "new_token": "bad token!"}, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "schema_name", "body", "valid"),
    CASES,
    ids=[f"{m} {p} #{i} {'good' if v else 'bad'}" for i, (m, p, _, _, v) in enumerate(CASES)],
)
def test_subscription_schemas_agree_with_the_server(
    api: FlaskClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    schema_name: str,
    body: Any,
    valid: bool,
) -> None:
    operation = spec["paths"][path][method.lower()]
    documented = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert documented == f"#/components/schemas/{schema_name}"
    assert validator(spec, schema_name).is_valid(body) is valid
    response = api.open(path, method=method, json=body)
    # Valid bodies pass validation: a 2xx, or a 404 for a token the server has never seen.
    assert (response.status_code != 422) is valid, (response.status_code, response.json)
    assert str(response.status_code) in operation["responses"]


def test_what_only_the_server_can_check_is_described_as_such(
    api: FlaskClient, spec: dict[str, Any]
) -> None:
    """The zone list is beyond the schema; the description says the server checks it."""
    body = {
        "token": token(),
        "platform": "android",
        "topics": ["israel"],
        "timezone": "Mars/Olympus",
    }
    assert validator(spec, "SubscribeRequest").is_valid(body)
    assert api.post("/v1/subscriptions", json=body).status_code == 422
    assert "checked by the server" in spec["paths"]["/v1/subscriptions"]["post"]["description"]


def test_the_described_catalogue_is_the_shipped_one(spec: dict[str, Any]) -> None:
    """Request topics are the catalogue, so a fuzzer sends topics the server knows."""
    shipped = [t.slug for t in load_catalogue(REPO / "config" / "topics.toml")]
    assert spec["components"]["schemas"]["CatalogueTopic"]["enum"] == shipped


@pytest.mark.parametrize(
    ("method", "schema_name", "body"),
    [
        ("POST", "SubscribeRequest", {"token": T, "platform": "ios", "topics": ["no-such"]}),
        ("DELETE", "UnsubscribeRequest", {"token": T, "topics": ["no-such"]}),
    ],
    ids=["subscribe", "unsubscribe"],
)
def test_an_unknown_topic_is_refused_by_the_schema_and_the_server_alike(
    api: FlaskClient, spec: dict[str, Any], method: str, schema_name: str, body: dict[str, Any]
) -> None:
    assert not validator(spec, schema_name).is_valid(body)
    response = api.open("/v1/subscriptions", method=method, json=body)
    assert response.status_code == 422
    assert response.json["unknown_topics"] == ["no-such"]
    assert response.json["type"] == "about:blank"


# --- patterns mean the same in the description's regex dialect and on the server ---------------

# Every character up to the CJK punctuation block, plus the odd ones out between dialects
# (\x1c-\x1f and \x85 are whitespace to Python, \ufeff to ECMA-262, neither to the other).
PATTERN_CHARS = [chr(c) for c in range(0x3100)] + ["\ufeff", "\U0001f600"]


def read_differently(
    described: Draft202012Validator, served: Callable[[Any], object], value: Callable[[str], Any]
) -> list[str]:
    """The characters of PATTERN_CHARS (in hex) for which the description and the server
    disagree on whether ``value(ch)`` is valid; ``served`` raises ValidationError to refuse."""
    differ = []
    for ch in PATTERN_CHARS:
        candidate = value(ch)
        try:
            served(candidate)
            accepted = True
        except ValidationError:
            accepted = False
        if described.is_valid(candidate) != accepted:
            differ.append(hex(ord(ch)))
    return differ


def test_web_urls_are_read_alike_by_the_description_and_the_server(
    spec: dict[str, Any],
) -> None:
    served: TypeAdapter[str] = TypeAdapter(WebUrl)
    differ = read_differently(
        validator(spec, "WebUrl"),
        served.validate_python,
        # mid-string: Python's $ also matches before \n
        lambda ch: f"https://news.example/a{ch}b",
    )
    assert not differ


def test_editor_urls_are_read_alike_by_the_description_and_the_server(
    spec: dict[str, Any],
) -> None:
    differ = read_differently(
        validator(spec, "CreateAlertRequest"),
        CreateAlertRequest.model_validate,
        lambda ch: {
            "headline": "Sirens",
            "url": f"https://news.example/a{ch}b",
            "topics": ["israel"],
        },
    )
    assert not differ


def test_blank_headlines_are_read_alike_by_the_description_and_the_server(
    spec: dict[str, Any],
) -> None:
    differ = read_differently(
        validator(spec, "CreateAlertRequest"),
        CreateAlertRequest.model_validate,
        lambda ch: {"headline": f"{ch}{ch}", "url": "https://news.example/a", "topics": ["israel"]},
    )
    assert not differ


# --- responses match their documented schemas -----------------------------------------------------


def test_reader_responses_match(api: FlaskClient, spec: dict[str, Any]) -> None:
    device = token()
    body = {"token": device, "platform": "android", "topics": ["israel"]}
    assert_documented(spec, "/v1/subscriptions", "POST", api.post("/v1/subscriptions", json=body))
    again = api.post("/v1/subscriptions", json=body)
    assert again.status_code == 200
    assert_documented(spec, "/v1/subscriptions", "POST", again)
    lookup = api.post("/v1/subscriptions/lookup", json={"token": device})
    assert_documented(spec, "/v1/subscriptions/lookup", "POST", lookup)
    assert_documented(spec, "/v1/topics", "GET", api.get("/v1/topics"))
    bad = api.post("/v1/subscriptions", json={**body, "topics": []})
    assert_documented(spec, "/v1/subscriptions", "POST", bad)
    assert bad.mimetype == "application/problem+json"
    unsupported = api.post("/v1/subscriptions", data="token=x")
    assert_documented(spec, "/v1/subscriptions", "POST", unsupported)


def test_alert_responses_match(
    api: FlaskClient, spec: dict[str, Any], keys: dict[str, str], runtime: Runtime
) -> None:
    runtime.publisher = RecordingPublisher()
    editor = auth(keys["editor"])
    alert = {"headline": "Sirens", "url": "https://news.example/a", "topics": ["israel"]}
    created = api.post("/v1/alerts", json={**alert, "hold_seconds": 600}, headers=editor)
    assert_documented(spec, "/v1/alerts", "POST", created)
    view: dict[str, Any] = created.get_json()
    documented = spec["components"]["schemas"]["Alert"]["properties"].keys()
    assert set(view) == set(documented), "Alert fields differ from the description"
    alert_id = view["id"]
    assert_documented(spec, "/v1/alerts", "GET", api.get("/v1/alerts", headers=editor))
    get = api.get(f"/v1/alerts/{alert_id}", headers=editor)
    assert_documented(spec, "/v1/alerts/{alert_id}", "GET", get)
    cancel = api.post(f"/v1/alerts/{alert_id}/cancel", headers=editor)
    assert_documented(spec, "/v1/alerts/{alert_id}/cancel", "POST", cancel)
    again = api.post(f"/v1/alerts/{alert_id}/send-now", headers=editor)
    assert again.status_code == 409
    assert_documented(spec, "/v1/alerts/{alert_id}/send-now", "POST", again)


def test_ops_and_health_responses_match(
    api: FlaskClient, spec: dict[str, Any], keys: dict[str, str]
) -> None:
    ops = auth(keys["ops"])
    assert_documented(spec, "/v1/ops/queues", "GET", api.get("/v1/ops/queues", headers=ops))
    assert_documented(
        spec, "/v1/ops/throughput", "GET", api.get("/v1/ops/throughput?minutes=5", headers=ops)
    )
    assert_documented(spec, "/livez", "GET", api.get("/livez"))
    assert_documented(spec, "/readyz", "GET", api.get("/readyz"))
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.mimetype in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    missing = api.get(f"/o/{uuid.uuid4()}")
    assert_documented(spec, "/o/{alert_id}", "GET", missing)


# --- the blueprint serving it ---------------------------------------------------------------------


def test_the_yaml_is_served_as_is(api: FlaskClient) -> None:
    response = api.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.data == openapi.spec_bytes()
    assert response.data == (REPO / "notifier" / "openapi.yaml").read_bytes()


def test_the_page_lists_every_operation(api: FlaskClient, spec: dict[str, Any]) -> None:
    response = api.get("/docs/api")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert 'href="/openapi.yaml"' in page
    assert "<script" not in page and "<link" not in page and " src=" not in page
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page


def test_the_page_shows_each_operations_summary_and_roles(spec: dict[str, Any]) -> None:
    page = openapi.render_listing(openapi.spec_bytes().decode("utf-8"), "/openapi.yaml")
    rows = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            roles = ", ".join(op.get("x-required-roles", ())) or "no key"
            row = (
                f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(op.get('summary', ''))}</td><td>{escape(roles)}</td></tr>"
            )
            assert row in page, f"{method.upper()} {path} is not listed as {row}"
            rows += 1
    assert page.count("<tr><td>") == rows
    assert f"<h1>{spec['info']['title']} {spec['info']['version']} HTTP API</h1>" in page


def test_the_listing_reads_any_yaml_layout() -> None:
    """Flow style, other indentation and quoting: what a YAML parser accepts, the page lists."""
    text = (
        "openapi: 3.1.0\n"
        "info: {title: 'It''s', version: 2}\n"
        "paths:\n"
        '   /b: {get: {summary: "Read b", x-required-roles: [ops]}, parameters: []}\n'
        "   /a:\n"
        "         delete:\n"
        "             summary: >-\n"
        "                Remove a\n"
        "             x-required-roles:\n"
        "               - editor\n"
        "               - admin\n"
    )
    spec = openapi.load_spec(text)
    assert openapi.read_operations(spec) == [
        openapi.Operation("GET", "/b", "Read b", ("ops",)),
        openapi.Operation("DELETE", "/a", "Remove a", ("editor", "admin")),
    ]
    assert openapi.read_info(spec) == {"title": "It's", "version": "2"}


def test_the_page_escapes_everything() -> None:
    hostile = (
        "openapi: 3.1.0\ninfo:\n  title: <b>x</b>\n  version: 1\npaths:\n"
        "  /a/<script>:\n    get:\n      summary: '<img src=x onerror=alert(1)>'\n"
        '      x-required-roles: ["<i>"]\n'
    )
    page = openapi.render_listing(hostile, '/x"><script>')
    assert "<script" not in page and "<img" not in page and "<b>x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;i&gt;" in page
