"""Editors flag a story: ``GET /v1/articles`` and ``POST /v1/articles/{id}/alert``.

Runs on SQLite and PostgreSQL. Articles arrive as the CMS sends them, through the signed
webhook, so the alert an editor makes is tied to the same article rows the intake keeps.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from notifier.alerts import from_article
from notifier.core.db import transaction
from notifier.core.models import Alert
from notifier.core.settings import Settings
from notifier.http import openapi
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import auth, signed_event
from tests.test_openapi import assert_documented

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
HOLD_SECONDS = 90
_numbers = itertools.count(1)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, database_url=db_url, webhook_secrets=SECRET, hold_seconds=str(HOLD_SECONDS)
    )


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


@pytest.fixture
def publisher(runtime: Runtime) -> RecordingPublisher:
    recorder = RecordingPublisher()
    runtime.publisher = recorder
    return recorder


# --- builders -----------------------------------------------------------------------------------


def article(**overrides: Any) -> dict[str, Any]:
    n = next(_numbers)
    data: dict[str, Any] = {
        "id": f"story-{n}",
        "url": f"https://news.example/story/{n}",
        "headline": f"Ordinary story {n}",
        "summary": "What happened, in one line.",
        "image_url": f"https://news.example/img/{n}.jpg",
        "topics": ["world"],
        "breaking": False,
        "revision": 1,
    }
    data.update(overrides)
    return data


def deliver(client: FlaskClient, type_: str, data: dict[str, Any]) -> TestResponse:
    """Send an article event signed as the CMS signs it."""
    body, headers = signed_event(SECRET, type_, data)
    return client.post("/v1/events", data=body, headers=headers)


def publish(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    data = article(**overrides)
    response = deliver(client, "article.published", data)
    assert response.status_code in (200, 202), response.json
    return data


def flag(
    client: FlaskClient,
    key: str,
    article_id: str,
    body: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> TestResponse:
    headers = auth(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(
        f"/v1/articles/{article_id}/alert", json=body if body is not None else {}, headers=headers
    )


def alerts_of(runtime: Runtime, article_id: str) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Alert).where(Alert.article_id == article_id)
            )
            or 0
        )


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["status"] == status
    return dict(response.json)


# --- roles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/articles"), ("POST", "/v1/articles/{id}/alert")]
)
def test_only_editors_and_admins_may_list_and_flag_articles(
    client: FlaskClient,
    keys: dict[str, str],
    publisher: RecordingPublisher,
    method: str,
    path: str,
) -> None:
    url = path.format(id=publish(client)["id"])

    def call(headers: dict[str, str]) -> int:
        return client.open(url, method=method, json={}, headers=headers).status_code

    assert call({}) == 401
    assert call(auth("ntf_deadbeef_not-a-real-key")) == 401
    assert call(auth(keys["ops"])) == 403
    assert call(auth(keys["editor"])) in (200, 201)
    assert call(auth(keys["admin"])) in (200, 409)  # the editor's click made the article's alert


# --- the list -------------------------------------------------------------------------------------


def test_articles_are_listed_newest_first_with_their_alert(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    old = publish(client, published_at="2026-12-01T08:00:00Z", headline="Morning story")
    new = publish(client, published_at="2026-12-01T09:30:00+00:00", headline="Later story")
    breaking = publish(client, published_at="2026-12-01T09:00:00Z", breaking=True)

    listed = client.get("/v1/articles", headers=auth(keys["editor"])).json
    assert listed is not None
    assert [a["id"] for a in listed["articles"]] == [new["id"], breaking["id"], old["id"]]
    assert listed["next"] is None
    first = listed["articles"][0]
    assert first["headline"] == "Later story"
    assert first["url"] == new["url"] and first["image_url"] == new["image_url"]
    assert first["topics"] == ["world"] and first["alert"] is None
    alert = listed["articles"][1]["alert"]
    assert alert["status"] == "scheduled" and alert["source"] == "webhook"
    assert alert["counts"] == {
        "audience": 0, "sent": 0, "failed": 0, "pruned": 0, "cancelled": 0, "pending": 0
    }  # fmt: skip


def test_articles_page_like_alerts_with_limit_and_cursor(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    # The same publication time for all: the id breaks the tie, so no page repeats or skips one.
    ids = {publish(client, published_at="2026-12-01T10:00:00Z")["id"] for _ in range(5)}
    editor = auth(keys["editor"])

    first = client.get("/v1/articles?limit=2", headers=editor).json
    assert first is not None and len(first["articles"]) == 2 and first["next"]
    rest = client.get(f"/v1/articles?limit=10&before={first['next']}", headers=editor).json
    assert rest is not None and len(rest["articles"]) == 3 and rest["next"] is None
    assert {a["id"] for a in first["articles"] + rest["articles"]} == ids
    clamped = client.get("/v1/articles?limit=0", headers=editor).json
    assert clamped is not None and len(clamped["articles"]) == 1  # clamped into 1-200


def test_bad_paging_is_a_problem_not_a_server_error(
    client: FlaskClient, keys: dict[str, str]
) -> None:
    editor = auth(keys["editor"])
    assert_problem(client.get("/v1/articles?limit=ten", headers=editor), 400)
    assert_problem(client.get("/v1/articles?before=%00", headers=editor), 400)
    assert_problem(client.get("/v1/articles?before=no-such-story", headers=editor), 404)


# --- flagging -------------------------------------------------------------------------------------


def test_an_alert_from_an_article_takes_its_text_and_is_held(
    client: FlaskClient, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client, headline="Quake felt across the region", topics=["world", "israel"])

    response = flag(client, keys["editor"], data["id"])

    assert response.status_code == 201, response.json
    alert = response.json
    assert alert is not None
    assert alert["article_id"] == data["id"] and alert["source"] == "editor"
    assert alert["headline"] == "Quake felt across the region"
    assert (alert["url"], alert["image_url"]) == (data["url"], data["image_url"])
    assert alert["body"] == data["summary"]
    assert alert["topics"] == ["israel", "world"]
    assert alert["status"] == "scheduled" and alert["hold_seconds"] == HOLD_SECONDS
    assert publisher.published == [("plan", alert["id"])]
    listed = client.get("/v1/articles", headers=auth(keys["editor"])).json
    assert listed is not None and listed["articles"][0]["alert"]["id"] == alert["id"]


def test_no_body_at_all_takes_the_article_as_it_is(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    response = client.post(f"/v1/articles/{data['id']}/alert", headers=auth(keys["editor"]))
    assert response.status_code == 201, response.json
    assert response.json is not None and response.json["headline"] == data["headline"]


def test_the_editor_overrides_the_articles_text_topics_and_timing(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    changes = {
        "headline": "Shorter push headline",
        "body": None,
        "url": "https://news.example/live",
        "image_url": None,
        "topics": ["israel"],
        "hold_seconds": 300,
        "ttl_seconds": 3600,
        "priority": "normal",
    }
    alert = flag(client, keys["editor"], data["id"], changes).json
    assert alert is not None
    assert {k: alert[k] for k in changes} == changes


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"headline": ""}, 422),
        ({"headline": None}, 422),
        ({"headline": "x" * 201}, 422),
        ({"topics": ["no-such-topic"]}, 422),
        ({"topics": []}, 422),
        ({"url": "javascript:alert(1)"}, 422),
        ({"hold_seconds": -1}, 422),
        ({"colour": "red"}, 422),
    ],
)
def test_bad_changes_are_refused_and_make_no_alert(
    client: FlaskClient,
    runtime: Runtime,
    keys: dict[str, str],
    publisher: RecordingPublisher,
    changes: dict[str, Any],
    status: int,
) -> None:
    data = publish(client)
    assert_problem(flag(client, keys["editor"], data["id"], changes), status)
    assert alerts_of(runtime, data["id"]) == 0 and publisher.published == []


def test_an_article_without_topics_needs_the_editor_to_choose_some(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client, topics=[])
    assert_problem(flag(client, keys["editor"], data["id"]), 422)
    assert flag(client, keys["editor"], data["id"], {"topics": ["world"]}).status_code == 201


def test_an_unknown_article_is_404(client: FlaskClient, keys: dict[str, str]) -> None:
    assert_problem(flag(client, keys["editor"], "never-published"), 404)


def test_an_article_id_with_a_slash_is_found(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client, id="2026/12/quake")
    assert flag(client, keys["editor"], "2026%2F12%2Fquake").status_code == 201
    assert data["id"] == "2026/12/quake"


def test_an_article_that_already_has_an_alert_is_409(
    client: FlaskClient, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client, breaking=True)  # the CMS flagged it: the webhook made its alert
    problem = assert_problem(flag(client, keys["editor"], data["id"]), 409)
    assert problem["alert_status"] == "scheduled"
    assert alerts_of(runtime, data["id"]) == 1


def test_an_unpublished_article_cannot_be_alerted(
    client: FlaskClient, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    deliver(client, "article.unpublished", {"id": data["id"]})
    assert_problem(flag(client, keys["editor"], data["id"]), 409)
    assert alerts_of(runtime, data["id"]) == 0


# --- idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_answers_the_same_alert(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    body = {"headline": "Flagged by the desk"}
    first = flag(client, keys["editor"], data["id"], body, idempotency_key="click-1")
    again = flag(client, keys["editor"], data["id"], body, idempotency_key="click-1")

    assert first.status_code == again.status_code == 201
    assert first.json is not None and again.json is not None
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(publisher.published) == 1


def test_an_idempotency_key_reused_for_another_body_or_article_is_422(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    one, other = publish(client), publish(client)
    editor, key = keys["editor"], "click-2"
    first = flag(client, editor, one["id"], {"hold_seconds": 60}, idempotency_key=key)
    assert first.status_code == 201
    assert_problem(flag(client, editor, one["id"], {"hold_seconds": 0}, idempotency_key=key), 422)
    assert_problem(
        flag(client, editor, other["id"], {"hold_seconds": 60}, idempotency_key=key), 422
    )


def test_a_bad_idempotency_key_is_400(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    assert_problem(flag(client, keys["editor"], data["id"], idempotency_key="k" * 201), 400)


# --- the link to the article ----------------------------------------------------------------------


def test_unpublishing_cancels_an_editor_flagged_alert(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    alert = flag(client, keys["editor"], data["id"]).json
    assert alert is not None

    response = deliver(client, "article.unpublished", {"id": data["id"]})

    assert response.json is not None and response.json["decision"] == "alert_cancelled"
    stored = client.get(f"/v1/alerts/{alert['id']}", headers=auth(keys["editor"])).json
    assert stored is not None and stored["status"] == "cancelled"
    assert stored["status_reason"] == "article unpublished"


def test_a_later_breaking_webhook_for_the_article_makes_no_second_alert(
    client: FlaskClient, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    data = publish(client)
    alert = flag(client, keys["editor"], data["id"]).json
    assert alert is not None

    response = deliver(client, "article.published", {**data, "breaking": True, "revision": 2})

    assert response.json is not None and response.json["decision"] == "duplicate"
    assert response.json["alert"]["id"] == alert["id"]
    assert alerts_of(runtime, data["id"]) == 1 and len(publisher.published) == 1


# --- concurrency (PostgreSQL: SQLite serialises writers, so there is no race to lose) -------------


def _postgres_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN, so there is no race to lose")


def two_at_once(app: Flask, request: Callable[[FlaskClient], TestResponse]) -> list[TestResponse]:
    """``request`` from two threads released together, each with a client of its own (as two
    browsers would be); the answers in the order they came back."""
    start = threading.Barrier(2)
    answers: list[TestResponse] = []

    def send() -> None:
        client = app.test_client()
        start.wait()
        answers.append(request(client))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return answers


def test_a_double_click_from_two_threads_makes_one_alert_and_one_409(
    app: Flask, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    _postgres_only(runtime)
    data = publish(app.test_client())
    answers = two_at_once(app, lambda client: flag(client, keys["editor"], data["id"]))

    assert sorted(a.status_code for a in answers) == [201, 409]
    assert alerts_of(runtime, data["id"]) == 1 and len(publisher.published) == 1


def test_a_click_waiting_on_an_uncommitted_alert_gets_409_once_it_commits(
    app: Flask, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    """The first request holds the article while the second arrives; the database decides."""
    _postgres_only(runtime)
    data = publish(app.test_client())
    answers: list[TestResponse] = []

    def second_click() -> None:
        answers.append(flag(app.test_client(), keys["editor"], data["id"]))

    with transaction(runtime.sessions) as session:
        first = from_article.alert_from_article(
            session,
            data["id"],
            from_article.ArticleAlertChanges(),
            from_article.Requester("someone"),
            default_hold=HOLD_SECONDS,
            default_ttl=3600,
        )
        racer = threading.Thread(target=second_click)
        racer.start()
        time.sleep(0.5)  # the second request now waits on the article's row
        assert answers == []
    racer.join(timeout=20)

    problem = assert_problem(answers[0], 409)
    assert problem["alert_id"] == first.id
    assert alerts_of(runtime, data["id"]) == 1


def test_concurrent_retries_with_one_idempotency_key_answer_the_same_alert(
    app: Flask, runtime: Runtime, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    _postgres_only(runtime)
    data = publish(app.test_client())
    answers = two_at_once(
        app, lambda client: flag(client, keys["editor"], data["id"], idempotency_key="same")
    )

    assert [a.status_code for a in answers] == [201, 201]
    assert len({a.json["id"] for a in answers if a.json}) == 1
    assert alerts_of(runtime, data["id"]) == 1


# --- the description ------------------------------------------------------------------------------


def test_answers_match_the_openapi_description(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    spec = yaml.safe_load(openapi.spec_bytes())
    editor = auth(keys["editor"])
    calm, breaking = publish(client), publish(client, breaking=True)
    item = "/v1/articles/{article_id}/alert"

    assert_documented(spec, "/v1/articles", "GET", client.get("/v1/articles", headers=editor))
    assert_documented(spec, item, "POST", flag(client, keys["editor"], calm["id"]))
    assert_documented(spec, item, "POST", flag(client, keys["editor"], breaking["id"]))
    assert_documented(spec, item, "POST", flag(client, keys["editor"], "nope"))
    assert_documented(spec, item, "POST", flag(client, keys["editor"], calm["id"], {"x": 1}))
    missing = client.get("/v1/articles?before=nope", headers=editor)
    assert_documented(spec, "/v1/articles", "GET", missing)


# --- urgency, translations and an edition, as the console sends them ----------------------------


def test_an_article_sent_as_breaking_carries_urgency_translations_and_edition(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    story = publish(client)
    body = {
        "urgency": "urgent",
        "locale": "en",
        "translations": {
            "fr": {"headline": "Une histoire", "url": "https://news.example/fr"},
            "he": {"headline": "סיפור", "body": "מה קרה"},
        },
        "locales": ["fr", "he"],
    }

    response = flag(client, keys["editor"], story["id"], body)

    assert response.status_code == 201, response.json
    stored = client.get(f"/v1/alerts/{response.json['id']}", headers=auth(keys["editor"])).json
    assert stored["urgency"] == "urgent"
    assert stored["locales"] == ["fr", "he"]
    assert stored["translations"] == {
        "fr": {"headline": "Une histoire", "url": "https://news.example/fr"},
        "he": {"headline": "סיפור", "body": "מה קרה"},
    }
    assert stored["headline"] == story["headline"]  # the article's own text is kept


@pytest.mark.parametrize(
    "body",
    [
        {"translations": {"not a tag": {"headline": "x"}}},
        {"translations": {"fr": {"headline": "  "}}},
        {"locales": ["1x"]},
        {"locales": []},
        {"urgency": "very"},
        {"locale": "under_score_"},
    ],
)
def test_a_malformed_language_field_on_an_article_alert_is_422(
    client: FlaskClient,
    runtime: Runtime,
    keys: dict[str, str],
    publisher: RecordingPublisher,
    body: dict[str, Any],
) -> None:
    story = publish(client)
    response = flag(client, keys["editor"], story["id"], body)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert alerts_of(runtime, story["id"]) == 0
