"""Devices belong to an app: subscribe, look up, unsubscribe and rotate within one app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.core.models import Device
from notifier.http.app import create_app
from notifier.runtime import Runtime
from notifier.subscriptions.bulk_import import import_devices
from tests.conftest import make_settings
from tests.factories import subscription, token


def write_apps_file(folder: Path, *app_ids: str) -> Path:
    """An apps file serving ``app_ids`` (each with a placeholder service-account file)."""
    tables = []
    for app_id in app_ids:
        (folder / f"{app_id}.json").write_text("{}", encoding="utf-8")
        tables.append(
            f'[[app]]\nid = "{app_id}"\nproject_id = "news-{app_id}"\n'
            f'credentials = "{app_id}.json"\n'
        )
    path = folder / "apps.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


@pytest.fixture
def apps_runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    apps_file = write_apps_file(tmp_path, "en", "fr")
    rt = Runtime.start(make_settings(tmp_path, database_url=db_url, apps_file=str(apps_file)))
    yield rt
    rt.close()


@pytest.fixture
def apps_client(apps_runtime: Runtime) -> FlaskClient:
    flask_app: Flask = create_app(runtime=apps_runtime)
    flask_app.config["TESTING"] = True
    return flask_app.test_client()


def _devices(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        return [tuple(r) for r in session.execute(select(Device.app, Device.token)).all()]


def test_a_subscription_without_app_goes_to_the_default_app(
    apps_client: FlaskClient, apps_runtime: Runtime
) -> None:
    body = subscription()
    assert apps_client.post("/v1/subscriptions", json=body).status_code == 201
    assert _devices(apps_runtime) == [("en", body["token"])]


def test_one_token_in_two_apps_is_two_devices_each_with_its_own_topics(
    apps_client: FlaskClient, apps_runtime: Runtime
) -> None:
    tok = token()
    en = apps_client.post(
        "/v1/subscriptions", json={**subscription(token=tok, topics=["israel"]), "app": "en"}
    )
    fr = apps_client.post(
        "/v1/subscriptions", json={**subscription(token=tok, topics=["world"]), "app": "fr"}
    )
    assert (en.status_code, fr.status_code) == (201, 201)
    assert sorted(_devices(apps_runtime)) == [("en", tok), ("fr", tok)]
    looked_up = apps_client.post("/v1/subscriptions/lookup", json={"token": tok, "app": "fr"})
    assert looked_up.json["topics"] == ["world"]
    # Without an app, the lookup is in the default app.
    default = apps_client.post("/v1/subscriptions/lookup", json={"token": tok})
    assert default.json["topics"] == ["israel"]


def test_an_unknown_app_is_a_422_problem(apps_client: FlaskClient, apps_runtime: Runtime) -> None:
    for path, method, body in [
        ("/v1/subscriptions", "post", {**subscription(), "app": "de"}),
        ("/v1/subscriptions/lookup", "post", {"token": token(), "app": "de"}),
        ("/v1/subscriptions", "delete", {"token": token(), "app": "de"}),
        (
            "/v1/subscriptions/token",
            "put",
            {"old_token": token(), "new_token": token(), "app": "de"},
        ),
    ]:
        response = getattr(apps_client, method)(path, json=body)
        assert response.status_code == 422, (path, response.json)
        assert response.mimetype == "application/problem+json"
        assert response.json["unknown_apps"] == ["de"]
    assert _devices(apps_runtime) == []


@pytest.mark.parametrize("bad", ["EN", "", "a b", 7, "x" * 65])
def test_a_malformed_app_is_a_422_problem(apps_client: FlaskClient, bad: object) -> None:
    response = apps_client.post("/v1/subscriptions", json={**subscription(), "app": bad})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_forgetting_a_device_in_one_app_leaves_the_other_apps_device(
    apps_client: FlaskClient, apps_runtime: Runtime
) -> None:
    tok = token()
    for app_id in ("en", "fr"):
        apps_client.post("/v1/subscriptions", json={**subscription(token=tok), "app": app_id})
    response = apps_client.delete("/v1/subscriptions", json={"token": tok, "app": "fr"})
    assert response.status_code == 204
    assert _devices(apps_runtime) == [("en", tok)]


def test_a_rotated_token_moves_within_its_app(
    apps_client: FlaskClient, apps_runtime: Runtime
) -> None:
    old, new = token(), token()
    apps_client.post("/v1/subscriptions", json={**subscription(token=old), "app": "fr"})
    # Rotating in the wrong app finds nothing.
    wrong = apps_client.put("/v1/subscriptions/token", json={"old_token": old, "new_token": new})
    assert wrong.status_code == 404
    moved = apps_client.put(
        "/v1/subscriptions/token", json={"old_token": old, "new_token": new, "app": "fr"}
    )
    assert moved.status_code == 200
    assert _devices(apps_runtime) == [("fr", new)]


def test_bulk_import_takes_the_app_per_line(apps_runtime: Runtime) -> None:
    tok = token()
    lines = [
        f'{{"token": "{tok}", "platform": "android", "topics": ["israel"]}}'.encode(),
        f'{{"token": "{tok}", "platform": "ios", "topics": ["world"], "app": "fr"}}'.encode(),
        f'{{"token": "{token()}", "platform": "ios", "topics": ["world"], "app": "de"}}'.encode(),
    ]
    apps = apps_runtime.settings.apps
    report = import_devices(apps_runtime.engine, lines, apps=apps.ids, default_app=apps.default.id)
    assert (report.imported, report.rejected) == (2, 1)
    assert report.rejections[0].reason == "unknown app 'de'"
    assert sorted(_devices(apps_runtime)) == [("en", tok), ("fr", tok)]
    again = import_devices(apps_runtime.engine, lines, apps=apps.ids, default_app=apps.default.id)
    assert (again.imported, again.updated) == (0, 2)
