"""Every bad input listed for subscriptions gets the right 4xx as problem+json, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import subscription, token


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    assert response.json["title"]
    return response.json


@pytest.mark.parametrize(
    "bad_token",
    ["", "x" * 10_000, 12345, None, ["a"], "has spaces in it", "short"],
    ids=["empty", "huge", "number", "null", "list", "spaces", "too-short"],
)
def test_malformed_tokens_are_422(client: FlaskClient, bad_token: object) -> None:
    problem = assert_problem(
        client.post("/v1/subscriptions", json=subscription(token=bad_token)), 422
    )
    assert any(e["field"] == "token" for e in problem["errors"])


def test_unknown_topic_is_422_and_named(client: FlaskClient) -> None:
    problem = assert_problem(
        client.post("/v1/subscriptions", json=subscription(topics=["israel", "nope"])), 422
    )
    assert problem["unknown_topics"] == ["nope"]


@pytest.mark.parametrize("topics", ["israel", {"israel": True}, [], [1, 2]])
def test_topics_must_be_a_list_of_slugs(client: FlaskClient, topics: object) -> None:
    assert_problem(client.post("/v1/subscriptions", json=subscription(topics=topics)), 422)


def test_thousands_of_topics_are_refused(client: FlaskClient) -> None:
    topics = [f"t{i}" for i in range(2000)]  # ~14 KB: under the size cap, over the topic cap
    assert_problem(client.post("/v1/subscriptions", json=subscription(topics=topics)), 422)


def test_unknown_fields_are_refused_not_assigned(client: FlaskClient) -> None:
    body = subscription(state="dead", id=1)
    problem = assert_problem(client.post("/v1/subscriptions", json=body), 422)
    assert {e["field"] for e in problem["errors"]} == {"state", "id"}


def test_unknown_platform_and_bad_timezone_are_422(client: FlaskClient) -> None:
    assert_problem(client.post("/v1/subscriptions", json=subscription(platform="palm")), 422)
    assert_problem(client.post("/v1/subscriptions", json=subscription(timezone="Mars/Base")), 422)


def test_error_bodies_never_echo_the_token(client: FlaskClient) -> None:
    tok = token()
    response = client.post("/v1/subscriptions", json=subscription(token=tok, platform="palm"))
    assert tok not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [("token=abc", "application/x-www-form-urlencoded"), ('{"token": "x"}', "text/plain")],
)
def test_non_json_bodies_are_415(client: FlaskClient, data: str, content_type: str) -> None:
    assert_problem(client.post("/v1/subscriptions", data=data, content_type=content_type), 415)


def test_broken_json_is_400(client: FlaskClient) -> None:
    response = client.post("/v1/subscriptions", data='{"token": ', content_type="application/json")
    assert_problem(response, 400)


def test_a_json_array_body_is_422(client: FlaskClient) -> None:
    assert_problem(client.post("/v1/subscriptions", json=[1, 2]), 422)


def test_oversized_body_is_413(client: FlaskClient) -> None:
    body = '{"token": "' + "a" * 2_000_000 + '"}'
    assert_problem(
        client.post("/v1/subscriptions", data=body, content_type="application/json"), 413
    )


def test_unknown_route_is_404_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.patch("/v1/subscriptions", json={})
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_a_flood_from_one_address_is_429_with_retry_after(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, database_url=db_url, rate_limits="subscriptions=5/hour")
    client = create_app(runtime=Runtime.start(settings)).test_client()
    statuses = [client.post("/v1/subscriptions", json=subscription()).status_code for _ in range(7)]
    assert statuses[:5] == [201] * 5
    assert statuses[5:] == [429, 429]
    response = client.post("/v1/subscriptions", json=subscription())
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_rate_limit_is_shared_through_redis(tmp_path: Path, db_url: str, redis_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url=db_url, redis_url=redis_url, rate_limits="subscriptions=4/hour"
    )
    runtime = Runtime.start(settings)
    first, second = (
        create_app(runtime=runtime).test_client(),
        create_app(runtime=runtime).test_client(),
    )
    statuses = [
        c.post("/v1/subscriptions", json=subscription()).status_code
        for c in (first, second, first, second, first, second)
    ]
    assert statuses == [201, 201, 201, 201, 429, 429]


def test_cors_allows_only_configured_origins(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, database_url=db_url, cors_origins="https://news.example")
    client = create_app(runtime=Runtime.start(settings)).test_client()
    allowed = client.post(
        "/v1/subscriptions", json=subscription(), headers={"Origin": "https://news.example"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://news.example"
    refused = client.post(
        "/v1/subscriptions", json=subscription(), headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in refused.headers
    preflight = client.options(
        "/v1/subscriptions",
        headers={"Origin": "https://news.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://news.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_bodies_over_the_configured_cap_are_413(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, database_url=db_url, max_body_bytes="2048")
    client = create_app(runtime=Runtime.start(settings)).test_client()
    body = subscription(locale="en", token="t" * 900)
    padded = '{"pad": "' + "x" * 3000 + '", ' + str(body)[1:]
    response = client.post("/v1/subscriptions", data=padded, content_type="application/json")
    assert_problem(response, 413)
    assert client.post("/v1/subscriptions", json=subscription()).status_code == 201
