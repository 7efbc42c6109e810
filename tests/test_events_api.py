"""The CMS webhook ``POST /v1/events`` as the CMS, the readers and the on-call engineer see it.

Runs on SQLite and PostgreSQL with a recording publisher in place of Celery, which also checks
that every trigger is published only after the alert it announces is committed.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from notifier.core.db import transaction
from notifier.core.models import Alert, Article, Outbox, WebhookEvent
from notifier.core.settings import Settings
from notifier.http.app import create_app
from notifier.intake.events import Decision, IntakeResult, IntakeRules, ingest_event
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.support import free_port


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


SECRET, ROTATED_SECRET = new_secret(), new_secret()
HOLD_SECONDS = 120
MAX_BYTES = 4096
_articles = itertools.count(1)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        database_url=db_url,
        webhook_secrets=f"{SECRET},{ROTATED_SECRET}",
        webhook_max_bytes=str(MAX_BYTES),
        hold_seconds=str(HOLD_SECONDS),
    )


@dataclass
class RecordingPublisher:
    """Stands in for Celery; notes whether each alert was already committed when published."""

    runtime: Runtime
    broker_down: bool = False
    published: list[tuple[str, str, bool]] = field(default_factory=list)

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        if self.broker_down:
            raise ConnectionError("broker unreachable")
        with self.runtime.sessions() as session:
            committed = session.get(Alert, ref) is not None
        self.published.append((kind, ref, committed))


@pytest.fixture
def publisher(runtime: Runtime) -> RecordingPublisher:
    recording = RecordingPublisher(runtime)
    runtime.publisher = recording
    return recording


# --- builders -----------------------------------------------------------------------------------


def article(**overrides: Any) -> dict[str, Any]:
    n = next(_articles)
    data: dict[str, Any] = {
        "id": f"article-{n}",
        "url": f"https://news.example/{n}",
        "headline": f"Headline {n}",
        "summary": "What happened, in one line.",
        "topics": ["world"],
        "breaking": True,
        "revision": 1,
    }
    data.update(overrides)
    return data


def event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "data": data}


def published(**overrides: Any) -> dict[str, Any]:
    return event("article.published", article(**overrides))


def deliver(
    client: FlaskClient,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict[str, str | None] | None = None,
) -> TestResponse:
    """POST a delivery signed as the CMS would; ``headers`` overrides (None removes) any header."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    sent: dict[str, str | None] = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, webhook_id, timestamp, body),
    }
    sent.update(headers or {})
    return client.post(
        "/v1/events", data=body, headers={k: v for k, v in sent.items() if v is not None}
    )


def count(runtime: Runtime, model: type[Any]) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stored_alert(runtime: Runtime, alert_id: str) -> Alert:
    with runtime.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["status"] == status
    return response.json


# --- alerts from articles -----------------------------------------------------------------------


def test_a_breaking_article_is_accepted_with_its_alert_and_triggered_after_commit(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    payload = published(headline="Quake hits the coast")
    response = deliver(client, payload)

    assert response.status_code == 202
    assert response.json is not None
    assert response.json["decision"] == "alert_created"
    alert = response.json["alert"]
    assert alert["status"] == "scheduled"
    assert alert["headline"] == "Quake hits the coast"
    assert alert["article_id"] == payload["data"]["id"]
    assert alert["send_at"]
    assert publisher.published == [("plan", alert["id"], True)]
    with runtime.sessions() as session:
        trigger = session.scalars(select(Outbox)).one()
        assert (trigger.kind, trigger.ref) == ("plan", alert["id"])
        assert trigger.dispatched_at is not None


def test_an_article_that_is_not_breaking_is_recorded_without_an_alert(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    response = deliver(client, published(breaking=False), webhook_id="msg_calm")

    assert response.status_code == 200
    assert response.json == {"decision": "not_breaking", "alert": None, "replayed": False}
    assert count(runtime, Alert) == 0
    assert publisher.published == []
    with runtime.sessions() as session:
        recorded = session.scalars(select(WebhookEvent)).one()
        assert (recorded.webhook_id, recorded.decision) == ("msg_calm", "not_breaking")


def test_an_article_on_an_alerting_topic_alerts_even_when_not_flagged_breaking(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    # config/topics.toml marks "breaking" as alerting.
    response = deliver(client, published(breaking=False, topics=["breaking", "world"]))
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["alert"]["topics"] == ["breaking", "world"]


def test_an_update_that_turns_an_article_breaking_creates_its_alert(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    data = article(breaking=False)
    deliver(client, event("article.published", data))
    response = deliver(client, event("article.updated", {**data, "breaking": True, "revision": 2}))
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["decision"] == "alert_created"
    assert len(publisher.published) == 1


def test_an_unknown_event_type_is_recorded_as_ignored(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    response = deliver(client, {"type": "comment.created", "data": {"anything": 1}})
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "ignored"
    with runtime.sessions() as session:
        assert session.scalars(select(WebhookEvent.decision)).one() == "ignored"


def test_fields_the_cms_adds_are_ignored_and_numeric_ids_accepted(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    payload = published(id=98765, seo_title="not ours", breaking=False)
    payload["timestamp"] = "2025-01-01T00:00:00Z"
    assert deliver(client, payload).status_code == 200
    with runtime.sessions() as session:
        assert session.get(Article, "98765") is not None


# --- duplicates ---------------------------------------------------------------------------------


def test_the_same_delivery_twice_gets_the_same_answer_and_one_alert(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    payload = published()
    first = deliver(client, payload, webhook_id="msg_twice")
    again = deliver(client, payload, webhook_id="msg_twice")

    assert first.json is not None and again.json is not None
    assert again.status_code == first.status_code == 202
    assert again.json["decision"] == first.json["decision"]
    assert again.json["alert"]["id"] == first.json["alert"]["id"]
    assert again.json["replayed"] is True
    assert count(runtime, Alert) == 1
    assert count(runtime, WebhookEvent) == 1
    assert len(publisher.published) == 1


def test_a_replayed_not_breaking_delivery_answers_200_again(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    payload = published(breaking=False)
    first = deliver(client, payload, webhook_id="msg_calm_twice")
    again = deliver(client, payload, webhook_id="msg_calm_twice")
    assert (first.status_code, again.status_code) == (200, 200)


def test_the_cms_retrying_an_article_with_a_new_webhook_id_gets_the_same_alert(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    payload = published()
    first = deliver(client, payload)
    retry = deliver(client, payload)

    assert first.json is not None and retry.json is not None
    assert retry.status_code == 202
    assert retry.json["decision"] == "duplicate"
    assert retry.json["alert"]["id"] == first.json["alert"]["id"]
    assert count(runtime, Alert) == 1
    assert count(runtime, WebhookEvent) == 2
    assert len(publisher.published) == 1


@pytest.mark.parametrize(
    ("second_id", "answer"),
    [("msg_a", (Decision.ALERT_CREATED, True)), ("msg_b", (Decision.DUPLICATE, False))],
    ids=["same-webhook-id", "same-article-new-webhook-id"],
)
def test_concurrent_deliveries_of_one_article_make_one_alert(
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    second_id: str,
    answer: tuple[Decision, bool],
) -> None:
    """Two API processes take the same event at once: the unique constraints pick one."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN, so there is no race to lose")
    caplog.set_level(logging.INFO, logger="notifier.intake.events")
    rules = IntakeRules(alerting_topics=(), hold_seconds=HOLD_SECONDS, ttl_seconds=3600)
    payload = published()
    answers: list[IntakeResult] = []

    def second_delivery() -> None:
        with transaction(runtime.sessions) as session:
            answers.append(
                ingest_event(session, webhook_id=second_id, payload=payload, rules=rules)
            )

    with transaction(runtime.sessions) as session:
        first = ingest_event(session, webhook_id="msg_a", payload=payload, rules=rules)
        racer = threading.Thread(target=second_delivery)
        racer.start()
        time.sleep(0.5)  # the racer is now waiting on the article's primary key
    racer.join(timeout=10)

    assert first.decision is Decision.ALERT_CREATED
    assert [(a.decision, a.replayed, a.alert_id) for a in answers] == [(*answer, first.alert_id)]
    assert count(runtime, Alert) == 1
    assert count(runtime, Outbox) == 1  # the losing delivery added no trigger to publish
    assert any(r.getMessage().startswith("concurrent delivery") for r in caplog.records)


# --- updates, unpublishing, stale revisions -----------------------------------------------------


def test_an_update_during_the_hold_window_edits_the_alert_text(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    data = article(headline="Early report")
    created = deliver(client, event("article.published", data)).json
    assert created is not None
    corrected = {**data, "headline": "Corrected report", "summary": "Now confirmed.", "revision": 2}
    response = deliver(client, event("article.updated", corrected))

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "alert_updated"
    alert = stored_alert(runtime, created["alert"]["id"])
    assert (alert.headline, alert.body) == ("Corrected report", "Now confirmed.")
    assert len(publisher.published) == 1


def test_an_update_after_the_alert_went_out_does_not_change_it(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    data = article(headline="As sent")
    created = deliver(client, event("article.published", data)).json
    assert created is not None
    with transaction(runtime.sessions) as session:
        session.execute(update(Alert).values(status="sent"))

    response = deliver(client, event("article.updated", {**data, "headline": "Too late"}))

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "alert_not_editable"
    assert stored_alert(runtime, created["alert"]["id"]).headline == "As sent"


def test_unpublishing_cancels_the_alert(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    data = article()
    created = deliver(client, event("article.published", data)).json
    assert created is not None
    response = deliver(client, event("article.unpublished", {"id": data["id"]}))

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "alert_cancelled"
    assert response.json["alert"]["status"] == "cancelled"
    assert stored_alert(runtime, created["alert"]["id"]).status == "cancelled"


def test_unpublishing_an_article_without_an_alert_is_recorded(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    response = deliver(client, event("article.unpublished", {"id": "never-seen"}))
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "no_alert"


def test_a_stale_revision_does_not_overwrite_newer_text(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    data = article(headline="Revision three", revision=3)
    created = deliver(client, event("article.published", data)).json
    assert created is not None
    older = {**data, "headline": "Revision two", "revision": 2}
    response = deliver(client, event("article.updated", older))

    assert response.status_code == 200
    assert response.json is not None
    assert response.json["decision"] == "stale_revision"
    assert stored_alert(runtime, created["alert"]["id"]).headline == "Revision three"
    with runtime.sessions() as session:
        stored = session.get(Article, data["id"])
        assert stored is not None
        assert (stored.headline, stored.revision) == ("Revision three", 3)


def test_a_late_retry_of_the_first_publish_gets_the_alert_without_undoing_the_update(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    first = article(headline="First text", revision=1)
    created = deliver(client, event("article.published", first)).json
    assert created is not None
    deliver(client, event("article.updated", {**first, "headline": "Second text", "revision": 2}))

    retry = deliver(client, event("article.published", first))

    assert retry.status_code == 202
    assert retry.json is not None
    assert retry.json["decision"] == "duplicate"
    assert stored_alert(runtime, created["alert"]["id"]).headline == "Second text"


# --- faults -------------------------------------------------------------------------------------


def test_with_the_broker_down_the_event_is_still_accepted_and_its_trigger_kept(
    client: FlaskClient, runtime: Runtime, publisher: RecordingPublisher
) -> None:
    publisher.broker_down = True
    response = deliver(client, published())

    assert response.status_code == 202
    with runtime.sessions() as session:
        trigger = session.scalars(select(Outbox)).one()
        assert trigger.dispatched_at is None  # left for the sweeper


@dataclass
class WatchingPublisher:
    """Notes, at each publish, whether another session already sees the trigger dispatched."""

    runtime: Runtime
    seen: list[object] = field(default_factory=list)

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        with self.runtime.sessions() as session:
            self.seen.append(session.scalars(select(Outbox.dispatched_at)).one())


def test_a_trigger_is_marked_dispatched_only_once_its_publish_has_returned(
    client: FlaskClient, runtime: Runtime
) -> None:
    # A process dying inside the publish must leave the row for the sweeper: the mark may only
    # become visible after the publish (on PostgreSQL it commits with the UPDATE ... RETURNING).
    watching = WatchingPublisher(runtime)
    runtime.publisher = watching  # type: ignore[assignment]

    assert deliver(client, published()).status_code == 202

    assert watching.seen == [None]
    with runtime.sessions() as session:
        assert session.scalars(select(Outbox.dispatched_at)).one() is not None


def test_with_the_database_down_the_cms_is_told_to_retry(tmp_path: Path) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    settings = make_settings(tmp_path, database_url=closed, webhook_secrets=SECRET)
    runtime = Runtime.start(settings, prepare_database=False)
    try:
        client = create_app(runtime=runtime).test_client()
        response = deliver(client, published())
    finally:
        runtime.close()

    problem = assert_problem(response, 503)
    assert problem["title"] == "Service Unavailable"
    assert int(response.headers["Retry-After"]) > 0


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_signature_header_is_401(client: FlaskClient, missing: str) -> None:
    assert_problem(deliver(client, published(), headers={missing: None}), 401)


@pytest.mark.parametrize("offset", [-301, 301], ids=["too-old", "future"])
def test_a_timestamp_outside_five_minutes_is_401(client: FlaskClient, offset: int) -> None:
    response = deliver(client, published(), timestamp=int(time.time()) + offset)
    assert_problem(response, 401)


def test_a_non_numeric_timestamp_is_401(client: FlaskClient) -> None:
    assert_problem(deliver(client, published(), headers={"webhook-timestamp": "now"}), 401)


def test_a_body_changed_by_one_byte_is_401(client: FlaskClient, runtime: Runtime) -> None:
    body = json.dumps(published()).encode()
    timestamp = int(time.time())
    signature = sign_webhook(SECRET, "msg_tampered", timestamp, body)
    response = deliver(
        client,
        body.replace(b"Headline", b"Headlinf", 1),
        webhook_id="msg_tampered",
        timestamp=timestamp,
        headers={"webhook-signature": signature},
    )
    assert_problem(response, 401)
    assert count(runtime, WebhookEvent) == 0


def test_a_wrong_secret_is_401(client: FlaskClient) -> None:
    assert_problem(deliver(client, published(), secret=new_secret()), 401)


@pytest.mark.parametrize("secret", [SECRET, ROTATED_SECRET], ids=["old", "new"])
def test_both_secrets_are_accepted_during_rotation(
    client: FlaskClient, publisher: RecordingPublisher, secret: str
) -> None:
    assert deliver(client, published(), secret=secret).status_code == 202


def test_an_unknown_signature_version_alone_is_401(client: FlaskClient) -> None:
    body = json.dumps(published()).encode()
    timestamp = int(time.time())
    valid = sign_webhook(SECRET, "msg_v1a", timestamp, body)
    response = deliver(
        client,
        body,
        webhook_id="msg_v1a",
        timestamp=timestamp,
        headers={"webhook-signature": valid.replace("v1,", "v1a,")},
    )
    assert_problem(response, 401)


def test_one_valid_signature_among_several_is_accepted(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    body = json.dumps(published()).encode()
    timestamp = int(time.time())
    valid = sign_webhook(SECRET, "msg_many", timestamp, body)
    wrong = sign_webhook(new_secret(), "msg_many", timestamp, body)
    response = deliver(
        client,
        body,
        webhook_id="msg_many",
        timestamp=timestamp,
        headers={"webhook-signature": f"{wrong} v2,xyz {valid}"},
    )
    assert response.status_code == 202


def test_an_oversized_body_is_413_before_verification(client: FlaskClient) -> None:
    huge = published(summary="x" * MAX_BYTES)
    assert_problem(deliver(client, huge), 413)


def test_an_oversized_chunked_body_without_content_length_is_413(client: FlaskClient) -> None:
    body = json.dumps(published(summary="x" * (MAX_BYTES * 4))).encode()
    response = client.post(
        "/v1/events",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        # What a server that de-chunks the body (gunicorn, werkzeug) tells the app.
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.request.content_length is None
    assert_problem(response, 413)


def test_a_chunked_body_within_the_limit_is_accepted(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    body = json.dumps(published()).encode()
    timestamp = int(time.time())
    response = client.post(
        "/v1/events",
        input_stream=io.BytesIO(body),
        headers={
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
            "webhook-id": "msg_chunked",
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(SECRET, "msg_chunked", timestamp, body),
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 202


def test_a_signed_body_that_is_not_json_is_400(client: FlaskClient) -> None:
    assert_problem(deliver(client, b'{"type": "article.published", "data": '), 400)


@pytest.mark.parametrize(
    "payload",
    [
        published(breaking="yes"),
        published(headline=""),
        published(topics="world"),
        published(url="javascript:alert(1)"),
        published(revision=-1),
        event("article.published", {"id": "no-fields"}),
        {"data": article()},
        [published()],
    ],
    ids=[
        "breaking-not-bool",
        "empty-headline",
        "topics-not-list",
        "bad-url",
        "negative-revision",
        "missing-fields",
        "no-type",
        "not-an-object",
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_422(
    client: FlaskClient, runtime: Runtime, payload: Any
) -> None:
    assert_problem(deliver(client, json.dumps(payload).encode()), 422)
    assert count(runtime, WebhookEvent) == 0


def test_without_configured_secrets_events_are_refused(tmp_path: Path, db_url: str) -> None:
    runtime = Runtime.start(make_settings(tmp_path, database_url=db_url))
    try:
        response = deliver(create_app(runtime=runtime).test_client(), published())
    finally:
        runtime.close()
    problem = assert_problem(response, 503)
    assert problem["title"] == "Webhook secrets not configured"


# --- logs ---------------------------------------------------------------------------------------


def test_logs_carry_the_decision_but_never_the_secret_or_signature(
    client: FlaskClient, publisher: RecordingPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(published()).encode()
    timestamp = int(time.time())
    signature = sign_webhook(SECRET, "msg_logged", timestamp, body)
    accepted = deliver(client, body, webhook_id="msg_logged", timestamp=timestamp)
    deliver(client, body, secret=new_secret())

    logged = " ".join(
        f"{record.getMessage()} {getattr(record, 'fields', '')}" for record in caplog.records
    )
    for secret_part in (SECRET, SECRET.removeprefix("whsec_"), signature, signature[3:]):
        assert secret_part not in logged
    assert accepted.json is not None
    decision = next(r for r in caplog.records if r.getMessage() == "webhook event")
    assert decision.fields == {  # type: ignore[attr-defined]
        "webhook_id": "msg_logged",
        "decision": "alert_created",
        "alert_id": accepted.json["alert"]["id"],
        "replayed": False,
    }
