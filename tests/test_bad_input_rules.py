"""The rules a fuzzer and a careful reader found broken, each held by a test (SQLite only)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Article
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import signed_event, token

SECRET = "whsec_" + base64.b64encode(b"input-rules-secret-24-byt").decode()


class _NoBroker:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        pass


@dataclass
class Api:
    client: FlaskClient
    runtime: Runtime
    editor: dict[str, str]

    def alert(self, **fields: Any) -> TestResponse:
        body: dict[str, Any] = {
            "headline": "Sirens",
            "url": "https://news.example/a",
            "topics": ["israel"],
            "hold_seconds": 600,
            **fields,
        }
        return self.client.post("/v1/alerts", json=body, headers=self.editor)

    def event(self, **data: Any) -> TestResponse:
        article = {
            "id": uuid.uuid4().hex,
            "url": "https://news.example/a",
            "headline": "Quiet day",
            "topics": ["world"],
            "breaking": False,
            **data,
        }
        raw, headers = signed_event(SECRET, "article.published", article)
        return self.client.post("/v1/events", data=raw, headers=headers)


@pytest.fixture
def api(sqlite_file_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = make_settings(
        tmp_path_factory.mktemp("rules"), database_url=sqlite_file_url, webhook_secrets=SECRET
    )
    runtime = Runtime.start(settings)
    runtime.publisher = _NoBroker()
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "rules")
    yield Api(
        create_app(runtime=runtime).test_client(), runtime, {"Authorization": f"Bearer {key}"}
    )
    runtime.close()


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/problem+json"
    return body_of(response)


def body_of(response: TestResponse) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict), response.get_data()[:300]
    return body


# --- alerts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["url", "image_url"])
def test_alert_urls_are_held_to_2083_characters(api: Api, field: str) -> None:
    base = "https://news.example/"
    assert api.alert(**{field: base + "a" * (2083 - len(base))}).status_code == 201
    problem = assert_problem(api.alert(**{field: base + "a" * (2084 - len(base))}), 422)
    assert problem["errors"][0]["field"] == field
    assert_problem(api.alert(**{field: base + "a" * 5000}), 422)


def test_whole_number_floats_are_integers_as_json_schema_says(api: Api) -> None:
    created = api.alert(hold_seconds=600.0, ttl_seconds=3600.0)
    assert created.status_code == 201, created.json
    alert = body_of(created)
    assert (alert["hold_seconds"], alert["ttl_seconds"]) == (600, 3600)
    assert_problem(api.alert(hold_seconds=600.5), 422)


def test_a_test_send_of_an_unknown_alert_is_404_even_without_test_devices(api: Api) -> None:
    response = api.client.post(f"/v1/alerts/{uuid.uuid4()}/test", headers=api.editor)
    assert assert_problem(response, 404)["detail"] == "No such alert."


def test_the_alert_list_cursor_is_an_alert_id(api: Api) -> None:
    assert_problem(api.client.get("/v1/alerts?before=yesterday", headers=api.editor), 400)
    assert_problem(api.client.get("/v1/alerts?before=", headers=api.editor), 400)
    assert_problem(api.client.get(f"/v1/alerts?before={uuid.uuid4()}", headers=api.editor), 404)
    listed = body_of(api.alert())["id"]
    assert api.client.get(f"/v1/alerts?before={listed}", headers=api.editor).status_code == 200


def test_an_unknown_topic_is_the_same_problem_on_every_route(api: Api) -> None:
    from_alerts = assert_problem(api.alert(topics=["atlantis"]), 422)
    from_readers = assert_problem(
        api.client.post(
            "/v1/subscriptions",
            json={"token": token(), "platform": "web", "topics": ["atlantis"]},
        ),
        422,
    )
    for problem in (from_alerts, from_readers):
        assert problem["detail"] == "unknown topic(s): atlantis"
        assert problem["unknown_topics"] == ["atlantis"]
    assert {k: from_alerts[k] for k in ("type", "title")} == {
        k: from_readers[k] for k in ("type", "title")
    }


# --- the webhook ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "published_at",
    [0, 1.5, 1_700_000_000, "2026-01-31", "2026-01-31T09:30:00", "2026-02-30T09:30:00Z",
     "2026-01-31 09:30:00Z", "2016-12-31T23:59:60Z", "yesterday", True],
)  # fmt: skip
def test_published_at_must_be_an_rfc3339_date_time(api: Api, published_at: object) -> None:
    problem = assert_problem(api.event(published_at=published_at), 422)
    assert problem["errors"][0]["field"].endswith("published_at")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-01-31T09:30:00Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31t11:30:00.1234567+02:00", datetime(2026, 1, 31, 9, 30, 0, 123456, UTC)),
    ],
)
def test_an_rfc3339_published_at_is_stored_as_that_instant(
    api: Api, sent: str, stored: datetime
) -> None:
    article_id = uuid.uuid4().hex
    assert api.event(id=article_id, published_at=sent).status_code == 200
    with transaction(api.runtime.sessions) as session:
        article = session.get(Article, article_id)
        assert article is not None and article.published_at is not None
        published = article.published_at
    if published.tzinfo is None:  # SQLite keeps naive UTC
        published = published.replace(tzinfo=UTC)
    assert published == stored


# --- headers ------------------------------------------------------------------------------------


def test_no_content_answers_carry_no_content_type(api: Api) -> None:
    unsubscribed = api.client.delete("/v1/subscriptions", json={"token": token()})
    removed = api.client.delete("/v1/test-devices", json={"token": token()}, headers=api.editor)
    for response in (unsubscribed, removed):
        assert response.status_code == 204
        assert "Content-Type" not in response.headers
        assert response.get_data() == b""


def test_successful_answers_carry_rate_limit_headers_but_no_retry_after(api: Api) -> None:
    response = api.client.post("/v1/subscriptions/lookup", json={"token": token()})
    assert response.status_code == 404
    assert "X-RateLimit-Remaining" in response.headers
    assert "Retry-After" not in response.headers
    subscribed = api.client.post(
        "/v1/subscriptions", json={"token": token(), "platform": "web", "topics": ["israel"]}
    )
    assert subscribed.status_code == 201
    assert "Retry-After" not in subscribed.headers
