"""Editors' alert API and API keys: roles on every route, idempotency, cancel and send-now."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.cli.main import main
from notifier.core.apikeys import revoke_key
from notifier.core.db import transaction
from notifier.core.models import ApiKey
from notifier.runtime import Runtime
from tests.factories import auth


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, float]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref, countdown))


@pytest.fixture
def publisher(runtime: Runtime) -> RecordingPublisher:
    recorder = RecordingPublisher()
    runtime.publisher = recorder
    return recorder


ALERT = {"headline": "Sirens in the north", "url": "https://news.example/a", "topics": ["israel"]}

ROUTES: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...]]] = [
    ("POST", "/v1/alerts", ALERT, ("editor", "admin")),
    ("GET", "/v1/alerts", None, ("editor", "ops", "admin")),
    ("GET", "/v1/alerts/{id}", None, ("editor", "ops", "admin")),
    ("POST", "/v1/alerts/{id}/cancel", None, ("editor", "admin")),
    ("POST", "/v1/alerts/{id}/send-now", None, ("editor", "admin")),
    ("POST", "/v1/alerts/{id}/test", None, ("editor", "admin")),
    ("GET", "/v1/test-devices", None, ("editor", "admin")),
    ("GET", "/v1/ops/queues", None, ("ops", "admin")),
    ("GET", "/v1/ops/throughput", None, ("ops", "editor", "admin")),
]


def make_alert(client: FlaskClient, key: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/alerts", json={**ALERT, **body}, headers=auth(key))
    assert response.status_code == 201, response.json
    return dict(response.json)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES)
def test_every_route_checks_the_key_and_its_role(
    client: FlaskClient,
    keys: dict[str, str],
    publisher: RecordingPublisher,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: tuple[str, ...],
) -> None:
    alert_id = make_alert(client, keys["admin"], hold_seconds=3600)["id"]
    url = path.format(id=alert_id)

    def call(headers: dict[str, str]) -> int:
        return client.open(url, method=method, json=body, headers=headers).status_code

    assert call({}) == 401
    assert call(auth("ntf_deadbeef_not-a-real-key")) == 401
    assert call({"Authorization": "Basic dXNlcjpwYXNz"}) == 401
    for role, key in keys.items():
        status = call(auth(key))
        if role in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


def test_a_revoked_key_is_refused(
    client: FlaskClient, keys: dict[str, str], runtime: Runtime
) -> None:
    assert client.get("/v1/alerts", headers=auth(keys["editor"])).status_code == 200
    prefix = keys["editor"].split("_")[1]
    with transaction(runtime.sessions) as session:
        assert revoke_key(session, prefix)
    response = client.get("/v1/alerts", headers=auth(keys["editor"]))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_keys_are_stored_hashed_with_last_use(
    client: FlaskClient, keys: dict[str, str], runtime: Runtime
) -> None:
    client.get("/v1/alerts", headers=auth(keys["ops"]))
    with runtime.sessions() as session:
        rows = session.scalars(select(ApiKey)).all()
    assert all(key not in {r.key_hash for r in rows} for key in keys.values())
    assert next(r for r in rows if r.role == "ops").last_used_at is not None


def test_keys_cli_creates_lists_and_revokes(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"NOTIFIER_DATABASE_URL": db_url, "NOTIFIER_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--role", "editor", "--name", "desk"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("ntf_")
    listed = runner.invoke(main, ["keys", "list"], env=env).output
    assert "desk" in listed and key not in listed
    prefix = key.split("_")[1]
    assert runner.invoke(main, ["keys", "revoke", prefix], env=env).exit_code == 0
    assert runner.invoke(main, ["keys", "revoke", "nosuchkey"], env=env).exit_code != 0


def test_same_idempotency_key_and_body_returns_the_same_alert(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    headers = {**auth(keys["editor"]), "Idempotency-Key": "desk-2026-11-28-001"}
    first = client.post("/v1/alerts", json=ALERT, headers=headers)
    second = client.post("/v1/alerts", json=ALERT, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json["id"] == second.json["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert [p[0] for p in publisher.published] == ["plan"]


def test_idempotency_key_reused_with_another_body_is_422(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    headers = {**auth(keys["editor"]), "Idempotency-Key": "desk-2026-11-28-002"}
    client.post("/v1/alerts", json=ALERT, headers=headers)
    response = client.post("/v1/alerts", json={**ALERT, "headline": "Other"}, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "bad",
    [
        {"headline": ""},
        {"url": "javascript:alert(1)"},
        {"topics": []},
        {"topics": ["no-such-topic"]},
        {"hold_seconds": -1},
        {"ttl_seconds": 5},
        {"colour": "red"},
    ],
)
def test_bad_alerts_are_422(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher, bad: dict[str, Any]
) -> None:
    response = client.post("/v1/alerts", json={**ALERT, **bad}, headers=auth(keys["editor"]))
    assert response.status_code == 422
    assert publisher.published == []


def test_cancel_in_the_hold_window_and_cancel_again(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    alert = make_alert(client, keys["editor"], hold_seconds=120)
    assert alert["status"] == "scheduled"
    assert publisher.published == [("plan", alert["id"], pytest.approx(120, abs=2))]
    cancelled = client.post(f"/v1/alerts/{alert['id']}/cancel", headers=auth(keys["editor"]))
    assert cancelled.json["status"] == "cancelled"
    again = client.post(f"/v1/alerts/{alert['id']}/cancel", headers=auth(keys["editor"]))
    assert again.status_code == 200
    send_now = client.post(f"/v1/alerts/{alert['id']}/send-now", headers=auth(keys["editor"]))
    assert send_now.status_code == 409


def test_send_now_ends_the_hold_and_fires_the_trigger(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    alert = make_alert(client, keys["editor"], hold_seconds=300)
    publisher.published.clear()
    response = client.post(f"/v1/alerts/{alert['id']}/send-now", headers=auth(keys["editor"]))
    assert response.status_code == 200
    assert ("plan", alert["id"], 0) in publisher.published


def test_listing_filters_by_status_and_pages(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    ids = [make_alert(client, keys["editor"], hold_seconds=600)["id"] for _ in range(5)]
    client.post(f"/v1/alerts/{ids[0]}/cancel", headers=auth(keys["editor"]))
    page = client.get("/v1/alerts?limit=2", headers=auth(keys["ops"])).json
    assert len(page["alerts"]) == 2 and page["next"]
    rest = client.get(f"/v1/alerts?limit=10&before={page['next']}", headers=auth(keys["ops"])).json
    assert len(rest["alerts"]) == 3 and rest["next"] is None
    cancelled = client.get("/v1/alerts?status=cancelled", headers=auth(keys["ops"])).json
    assert [a["id"] for a in cancelled["alerts"]] == [ids[0]]
    assert client.get("/v1/alerts?status=bogus", headers=auth(keys["ops"])).status_code == 400


def test_unknown_alert_is_404(client: FlaskClient, keys: dict[str, str]) -> None:
    assert client.get("/v1/alerts/nope", headers=auth(keys["editor"])).status_code == 404
    assert client.post("/v1/alerts/nope/cancel", headers=auth(keys["editor"])).status_code == 404


def test_a_test_send_needs_registered_test_devices(
    client: FlaskClient, keys: dict[str, str], publisher: RecordingPublisher
) -> None:
    alert = make_alert(client, keys["editor"], hold_seconds=600)
    refused = client.post(f"/v1/alerts/{alert['id']}/test", headers=auth(keys["editor"]))
    assert refused.status_code == 422
    added = client.post(
        "/v1/test-devices",
        json={"token": "editor-phone-0001", "platform": "ios"},
        headers=auth(keys["editor"]),
    )
    assert added.status_code == 201
    test = client.post(f"/v1/alerts/{alert['id']}/test", headers=auth(keys["editor"]))
    assert test.status_code == 202
    assert test.json["source"] == "test" and test.json["id"] != alert["id"]
