"""What one intake request sends to the database, pinned so that it cannot creep back up.

Statement counts are deterministic for a given request (unlike timings), so these are exact
assertions, on both backends: SQL statements, and round trips (the statements plus BEGIN, COMMIT
or ROLLBACK and pool pings). Issue 12 took the subscribe and the webhook paths down to these; a
change that needs more should say why here. The after-commit publication of a new alert's
trigger runs in the request too, so it is counted with it.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from notifier.core import db
from notifier.core.db import RoundTrips
from notifier.core.settings import Settings
from notifier.intake.signatures import sign_webhook
from notifier.runtime import Runtime
from tests.conftest import make_settings

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
TOKEN = "statements-test:APA91b" + "x" * 140


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=db_url, webhook_secrets=SECRET)


@dataclass
class Publisher:
    """Stands in for Celery without touching the database, so only the request's SQL counts."""

    published: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


@pytest.fixture
def publisher(runtime: Runtime) -> Publisher:
    recording = Publisher()
    runtime.publisher = recording
    return recording


@pytest.fixture
def trips(
    runtime: Runtime, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RoundTrips]:
    # A pooled connection is pinged after sitting idle for a second (tests/test_db_ping.py); a
    # slow moment on a busy machine must not add a ping to these counts.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    # A running server has its topic cache and pooled connections warm already.
    client.post(
        "/v1/subscriptions", json={"token": "warm-up-token", "platform": "ios", "topics": ["world"]}
    )
    with RoundTrips(runtime.engine) as counter:
        counter.reset()
        yield counter


def deliver(client: FlaskClient, webhook_id: str, data: dict[str, object]) -> int:
    body = json.dumps({"type": "article.published", "data": data}).encode()
    ts = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(SECRET, webhook_id, ts, body),
    }
    return client.post("/v1/events", data=body, headers=headers).status_code


def article(article_id: str, *, breaking: bool) -> dict[str, object]:
    return {
        "id": article_id,
        "url": f"https://news.example/{article_id}",
        "headline": "A headline",
        "summary": "A summary.",
        "topics": ["israel"] if breaking else ["world"],
        "breaking": breaking,
    }


def backend(runtime: Runtime) -> str:
    return runtime.engine.dialect.name


# (statements, round trips) per backend. SQLite's BEGIN IMMEDIATE is a statement of its own.
# A subscribe: the device upsert (returning the topics it followed) and the new subscriptions;
# the same subscribe again has no new subscription to insert. On PostgreSQL both are one
# statement (a data-modifying CTE) in autocommit, without BEGIN and COMMIT
# (notifier/subscriptions/service.py, _subscribe_alone); it was 2 statements and 4 round trips
# (1 and 3 the same again).
SUBSCRIBE_NEW = {"postgresql": (1, 1), "sqlite": (3, 4)}
SUBSCRIBE_KNOWN = {"postgresql": (1, 1), "sqlite": (3, 4)}
SUBSCRIBE_SAME = {"postgresql": (1, 1), "sqlite": (2, 3)}
# A delivery is first tried on a Core connection (notifier/intake/events.py): the article upserted
# (returning its alert's id), the delivery inserted ON CONFLICT DO NOTHING (no look-up first),
# the counter upserted; on PostgreSQL an event that cannot alert does the upsert and the insert
# in one statement (a data-modifying CTE). A new alert adds its row and its outbox row in that
# transaction; after the commit the trigger is published from memory and marked dispatched in
# one UPDATE, without BEGIN/COMMIT on PostgreSQL (notifier/core/outbox.py, core_transaction).
# On the Session path it was a look-up more, and an UPDATE ... RETURNING in a transaction of its
# own (7 statements, 11 round trips on PostgreSQL; 11 and 14 on SQLite, which read and marked in
# two transactions). A replay: the Core attempt's upsert finds the article's alert (or the
# webhook-id recorded) and rolls back, then the Session path looks the webhook-id up, reads its
# alert, counts. That costs a replay (rare: a CMS retry) three round trips, for fewer on every
# first delivery.
EVENT_NOT_BREAKING = {"postgresql": (2, 4), "sqlite": (4, 5)}
EVENT_BREAKING = {"postgresql": (6, 8), "sqlite": (8, 10)}
EVENT_REPLAYED = {"postgresql": (4, 8), "sqlite": (6, 8)}


def test_subscribing_a_new_device(client: FlaskClient, runtime: Runtime, trips: RoundTrips) -> None:
    body = {"token": TOKEN, "platform": "android", "topics": ["israel", "world"]}
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    assert (trips.statements, trips.round_trips) == SUBSCRIBE_NEW[backend(runtime)], trips.log


@pytest.mark.parametrize("change", ["update", "same again"])
def test_subscribing_a_known_device(
    client: FlaskClient, runtime: Runtime, trips: RoundTrips, change: str
) -> None:
    body = {"token": TOKEN, "platform": "android", "topics": ["israel", "world"]}
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    if change == "update":
        body = {**body, "topics": ["sport"], "locale": "fr", "timezone": "Europe/Paris"}
    trips.reset()

    answer = client.post("/v1/subscriptions", json=body)

    assert answer.status_code == 200
    expected = SUBSCRIBE_KNOWN if change == "update" else SUBSCRIBE_SAME
    assert (trips.statements, trips.round_trips) == expected[backend(runtime)], trips.log


def test_a_non_breaking_article(client: FlaskClient, runtime: Runtime, trips: RoundTrips) -> None:
    assert deliver(client, "msg_quiet", article("quiet-1", breaking=False)) == 200
    assert (trips.statements, trips.round_trips) == EVENT_NOT_BREAKING[backend(runtime)], trips.log


def test_a_breaking_article_and_its_replay(
    client: FlaskClient, runtime: Runtime, trips: RoundTrips, publisher: Publisher
) -> None:
    assert deliver(client, "msg_breaking", article("breaking-1", breaking=True)) == 202
    assert len(publisher.published) == 1  # the publication after commit is part of the count
    assert (trips.statements, trips.round_trips) == EVENT_BREAKING[backend(runtime)], trips.log
    trips.reset()

    assert deliver(client, "msg_breaking", article("breaking-1", breaking=True)) == 202

    assert (trips.statements, trips.round_trips) == EVENT_REPLAYED[backend(runtime)], trips.log
