"""The subscribe as one statement in autocommit (PostgreSQL): what only a transaction did before.

notifier/subscriptions/service.py (_subscribe_alone) writes the device and its subscriptions in
one statement that commits by itself, so the quiet-hours rule is checked inside it and a
failing statement must leave nothing behind; the driver's errors must still read as
SQLAlchemy's (a 503 when PostgreSQL dropped the connection) without the token.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from notifier.core import db
from notifier.core.db import make_engine
from notifier.core.models import Device
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import subscription

QUIET = {"start": "22:00", "end": "07:00", "mode": "skip"}


def test_a_stored_device_breaking_the_quiet_hours_rule_is_refused_and_left_as_it_was(
    client: FlaskClient, runtime: Runtime
) -> None:
    # Quiet hours and no zone can only come from data older than the rule; a subscribe that
    # does not fix it is a 422, and neither the device nor its topics change.
    body = subscription(topics=["israel"], timezone="Asia/Jerusalem", quiet_hours=QUIET)
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    with db.transaction(runtime.sessions) as session:
        session.execute(update(Device).values(timezone=None))
        before = session.execute(select(Device.last_seen_at, Device.platform)).one()

    again = subscription(token=body["token"], platform="ios", topics=["world"], locale="fr")
    answer = client.post("/v1/subscriptions", json=again)

    assert answer.status_code == 422
    assert answer.content_type == "application/problem+json"
    with runtime.sessions() as session:
        assert session.execute(select(Device.last_seen_at, Device.platform)).one() == before
        assert session.scalar(select(Device.locale)) is None
    lookup = client.post("/v1/subscriptions/lookup", json={"token": body["token"]})
    assert lookup.json["topics"] == ["israel"]


def test_quiet_hours_relying_on_the_stored_zone_of_a_new_device_write_nothing(
    client: FlaskClient, runtime: Runtime
) -> None:
    answer = client.post("/v1/subscriptions", json=subscription(quiet_hours=QUIET))

    assert answer.status_code == 422
    with runtime.sessions() as session:
        assert session.scalar(select(Device.id)) is None


@pytest.fixture
def pg_client(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[FlaskClient, Runtime]:
    # No ping before reuse: the test must reach the statement on a connection PostgreSQL closed.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    runtime = Runtime.start(make_settings(tmp_path, database_url=pg_url))
    return create_app(runtime=runtime).test_client(), runtime


def test_a_connection_postgresql_dropped_is_a_503_and_not_reused(
    pg_client: tuple[FlaskClient, Runtime], pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = pg_client
    try:
        assert client.post("/v1/subscriptions", json=subscription()).status_code == 201
        with runtime.engine.connect() as connection:  # the pool's one connection
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        admin = make_engine(pg_url, pool_size=1, max_overflow=0)
        with admin.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid or 0)})")
        admin.dispose()
        body = subscription()

        answer = client.post("/v1/subscriptions", json=body)

        assert answer.status_code == 503
        assert int(answer.headers["Retry-After"]) > 0
        assert body["token"] not in caplog.text
        assert client.post("/v1/subscriptions", json=body).status_code == 201
    finally:
        runtime.close()


def test_a_restarted_server_costs_one_503_not_one_per_pooled_connection(
    pg_client: tuple[FlaskClient, Runtime], pg_url: str
) -> None:
    client, runtime = pg_client
    try:
        assert client.post("/v1/subscriptions", json=subscription()).status_code == 201
        # Two connections in the pool, both then dropped by the server, as a restart does.
        with runtime.engine.connect() as first, runtime.engine.connect() as second:
            pids = [
                int(c.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
                for c in (first, second)
            ]
        admin = make_engine(pg_url, pool_size=1, max_overflow=0)
        with admin.connect() as connection:
            for pid in pids:
                connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        admin.dispose()

        answers = [
            client.post("/v1/subscriptions", json=subscription()).status_code for _ in range(3)
        ]

        assert answers == [503, 201, 201]
    finally:
        runtime.close()
