"""The readers' subscription API, as the contract describes it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.core.models import Device, Subscription
from notifier.runtime import Runtime
from tests.factories import subscription, token


def lookup(client: FlaskClient, tok: str) -> dict:
    response = client.post("/v1/subscriptions/lookup", json={"token": tok})
    assert response.status_code == 200, response.json
    return response.json


def test_new_device_is_created_with_its_topics(client: FlaskClient) -> None:
    body = subscription(topics=["israel", "breaking"], locale="he-IL", timezone="Asia/Jerusalem")
    response = client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201
    assert response.json["topics"] == ["breaking", "israel"]
    assert response.json["locale"] == "he-IL"
    assert response.json["timezone"] == "Asia/Jerusalem"
    assert "token" not in response.json


def test_subscribing_a_known_device_adds_topics(client: FlaskClient) -> None:
    body = subscription(topics=["israel"])
    client.post("/v1/subscriptions", json=body)
    response = client.post("/v1/subscriptions", json={**body, "topics": ["world", "israel"]})
    assert response.status_code == 200
    assert response.json["topics"] == ["israel", "world"]


def test_one_device_row_per_token_however_often_it_subscribes(
    client: FlaskClient, runtime: Runtime
) -> None:
    body = subscription(topics=["israel"])
    for _ in range(3):
        client.post("/v1/subscriptions", json=body)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1


def test_removing_some_topics_keeps_the_others(client: FlaskClient) -> None:
    body = subscription(topics=["israel", "world", "sport"])
    client.post("/v1/subscriptions", json=body)
    response = client.delete(
        "/v1/subscriptions", json={"token": body["token"], "topics": ["world", "sport"]}
    )
    assert response.status_code == 204
    assert lookup(client, body["token"])["topics"] == ["israel"]


def test_unsubscribing_entirely_forgets_the_device(client: FlaskClient, runtime: Runtime) -> None:
    body = subscription()
    client.post("/v1/subscriptions", json=body)
    assert client.delete("/v1/subscriptions", json={"token": body["token"]}).status_code == 204
    assert client.post("/v1/subscriptions/lookup", json={"token": body["token"]}).status_code == 404
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 0


def test_unsubscribe_answers_the_same_for_unknown_tokens(client: FlaskClient) -> None:
    known = subscription()
    client.post("/v1/subscriptions", json=known)
    a = client.delete("/v1/subscriptions", json={"token": known["token"]})
    b = client.delete("/v1/subscriptions", json={"token": token()})
    assert (a.status_code, a.data, a.mimetype) == (b.status_code, b.data, b.mimetype)


def test_lookup_returns_topics_and_preferences(client: FlaskClient) -> None:
    body = subscription(platform="web", topics=["world"], locale="en-GB")
    client.post("/v1/subscriptions", json=body)
    found = lookup(client, body["token"])
    assert found["platform"] == "web"
    assert found["topics"] == ["world"]
    assert found["locale"] == "en-GB"


def test_lookup_of_unknown_token_is_404_problem(client: FlaskClient) -> None:
    response = client.post("/v1/subscriptions/lookup", json={"token": token()})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_rotated_token_keeps_its_subscriptions(client: FlaskClient) -> None:
    body = subscription(topics=["israel", "world"])
    client.post("/v1/subscriptions", json=body)
    new = token()
    response = client.put(
        "/v1/subscriptions/token", json={"old_token": body["token"], "new_token": new}
    )
    assert response.status_code == 200
    assert lookup(client, new)["topics"] == ["israel", "world"]
    assert client.post("/v1/subscriptions/lookup", json={"token": body["token"]}).status_code == 404


def test_rotation_onto_an_already_registered_token_merges_topics(
    client: FlaskClient, runtime: Runtime
) -> None:
    old = subscription(topics=["israel"])
    new = subscription(topics=["world"])
    client.post("/v1/subscriptions", json=old)
    client.post("/v1/subscriptions", json=new)
    response = client.put(
        "/v1/subscriptions/token", json={"old_token": old["token"], "new_token": new["token"]}
    )
    assert response.json["topics"] == ["israel", "world"]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1


def test_rotation_of_unknown_token_is_404(client: FlaskClient) -> None:
    response = client.put(
        "/v1/subscriptions/token", json={"old_token": token(), "new_token": token()}
    )
    assert response.status_code == 404


def test_a_pruned_device_that_subscribes_again_is_active(
    client: FlaskClient, runtime: Runtime
) -> None:
    body = subscription()
    client.post("/v1/subscriptions", json=body)
    with runtime.sessions.begin() as session:
        device = session.scalar(select(Device))
        assert device is not None
        device.state, device.dead_reason = "dead", "UNREGISTERED"
    assert client.post("/v1/subscriptions", json=body).status_code == 200
    with runtime.sessions() as session:
        assert session.scalar(select(Device.state)) == "active"


def test_topics_lists_the_catalogue(client: FlaskClient) -> None:
    response = client.get("/v1/topics")
    assert response.status_code == 200
    slugs = [t["slug"] for t in response.json["topics"]]
    assert {"breaking", "israel", "world"} <= set(slugs)
    assert all(set(t) == {"slug", "name"} for t in response.json["topics"])


def test_a_subscribe_runs_on_a_core_connection_without_an_orm_session(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subscribe is two Core statements; an ORM Session around them cost more server CPU
    # than their SQL (issue 12), so the view takes a connection from the engine instead.
    def no_session() -> None:
        raise AssertionError("POST /v1/subscriptions opened an ORM session")

    body = subscription(topics=["israel"])
    client.post("/v1/subscriptions", json=body)  # warms the topic cache, as a running server's
    monkeypatch.setattr(runtime, "sessions", no_session)
    assert client.post("/v1/subscriptions", json=subscription(topics=["world"])).status_code == 201
    assert client.post("/v1/subscriptions", json={**body, "topics": ["sport"]}).status_code == 200
    monkeypatch.undo()
    assert lookup(client, str(body["token"]))["topics"] == ["israel", "sport"]
