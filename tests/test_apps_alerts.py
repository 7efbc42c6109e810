"""Alerts and article events name the apps they go to: checked, stored, shown with counts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Alert, Batch, Delivery, Device, WebhookEvent
from notifier.http.app import create_app
from notifier.intake.signatures import sign_webhook
from notifier.observability.ops_view import audience_by_app
from notifier.pipeline.planner import plan_slice
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import subscription, token
from tests.test_apps_subscriptions import write_apps_file
from tests.test_events_api import new_secret

SECRET = new_secret()
ALERT = {"headline": "Sirens in the north", "url": "https://news.example/a", "topics": ["israel"]}


class _Publisher:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        """Triggers are not needed: the tests plan by hand."""


@pytest.fixture
def apps_runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    apps_file = write_apps_file(tmp_path, "en", "fr", "web")
    settings = make_settings(
        tmp_path, database_url=db_url, apps_file=str(apps_file), webhook_secrets=SECRET
    )
    rt = Runtime.start(settings)
    rt.publisher = _Publisher()
    yield rt
    rt.close()


@pytest.fixture
def client(apps_runtime: Runtime) -> FlaskClient:
    app = create_app(runtime=apps_runtime)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def editor(apps_runtime: Runtime) -> dict[str, str]:
    with transaction(apps_runtime.sessions) as session:
        key, _ = create_key(session, "editor", "apps tests")
    return {"Authorization": f"Bearer {key}"}


def test_an_alert_for_unknown_apps_is_a_422_naming_them(
    client: FlaskClient, editor: dict[str, str], apps_runtime: Runtime
) -> None:
    response = client.post("/v1/alerts", json={**ALERT, "apps": ["fr", "de", "xx"]}, headers=editor)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["unknown_apps"] == ["de", "xx"]
    with apps_runtime.sessions() as session:
        assert session.scalar(select(Alert.id)) is None


@pytest.mark.parametrize("apps", [[], ["FR"], "fr", [7]])
def test_a_malformed_apps_list_is_a_422(
    client: FlaskClient, editor: dict[str, str], apps: object
) -> None:
    response = client.post("/v1/alerts", json={**ALERT, "apps": apps}, headers=editor)
    assert response.status_code == 422


def test_the_planner_batches_each_app_apart_and_keeps_only_the_alerts_apps(
    client: FlaskClient, editor: dict[str, str], apps_runtime: Runtime
) -> None:
    # Interleaved ids: every page holds devices of all three apps.
    for _ in range(3):
        for app_id in ("en", "fr", "web"):
            body = {**subscription(token=token()), "app": app_id}
            assert client.post("/v1/subscriptions", json=body).status_code == 201
    created = client.post("/v1/alerts", json={**ALERT, "apps": ["web", "fr"]}, headers=editor)
    assert created.status_code == 201
    assert created.json["apps"] == ["fr", "web"]

    plan_slice(apps_runtime.sessions, created.json["id"])

    view = client.get(f"/v1/alerts/{created.json['id']}", headers=editor).json
    assert view["counts"]["audience"] == 6
    assert {app: c["pending"] for app, c in view["by_app"].items()} == {"fr": 3, "web": 3}
    with apps_runtime.sessions() as session:
        mixed = session.execute(
            select(Batch.id)
            .join(Delivery, Delivery.batch_id == Batch.id)
            .join(Device, Device.id == Delivery.device_id)
            .where(Device.app != Batch.app)
        ).all()
        batch_apps = sorted(session.scalars(select(Batch.app)))
    assert mixed == []  # every device is in a batch of its own app
    assert batch_apps == ["fr", "web"]
    with apps_runtime.sessions() as session:
        # What the dashboard's recent alerts show per app, from the batches alone.
        assert audience_by_app(session, [created.json["id"]]) == {
            created.json["id"]: {"fr": 3, "web": 3}
        }


def _deliver(client: FlaskClient, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    response = client.post(
        "/v1/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(SECRET, webhook_id, timestamp, body),
        },
    )
    return response.status_code, dict(response.json or {})


def _article(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "id": f"article-{uuid.uuid4().hex[:8]}",
        "url": "https://news.example/1",
        "headline": "Headline",
        "topics": ["world"],
        "breaking": True,
    }
    data.update(overrides)
    return {"type": "article.published", "data": data}


def test_an_article_event_takes_apps_and_refuses_unknown_ones(
    client: FlaskClient, apps_runtime: Runtime
) -> None:
    status, body = _deliver(client, _article(apps=["fr"]))
    assert status == 202
    assert body["alert"]["apps"] == ["fr"]  # type: ignore[index]

    status, body = _deliver(client, _article(apps=["fr", "de"]))
    assert status == 422
    assert body["unknown_apps"] == ["de"]
    with apps_runtime.sessions() as session:
        # The refused delivery recorded nothing, so the CMS may send it again once fixed.
        assert len(session.scalars(select(WebhookEvent.id)).all()) == 1


def test_an_editor_sends_an_article_to_some_apps_only(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    payload = _article(breaking=False)
    status, _ = _deliver(client, payload)
    assert status == 200
    article_id = payload["data"]["id"]  # type: ignore[index]

    refused = client.post(f"/v1/articles/{article_id}/alert", json={"apps": ["de"]}, headers=editor)
    sent = client.post(f"/v1/articles/{article_id}/alert", json={"apps": ["web"]}, headers=editor)

    assert refused.status_code == 422
    assert refused.json["unknown_apps"] == ["de"]
    assert sent.status_code == 201, sent.json
    assert sent.json["apps"] == ["web"]
