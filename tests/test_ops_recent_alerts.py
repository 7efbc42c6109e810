"""The ops view's recent alerts: what finished last, with its counts and the opens it drew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from flask.testing import FlaskClient

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.vocabulary import AlertStatus
from notifier.http import openapi
from notifier.observability.ops_view import RECENT_ALERTS
from notifier.runtime import Runtime
from tests.test_openapi import assert_documented

FINISHED = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def alert(
    runtime: Runtime,
    headline: str,
    status: AlertStatus,
    *,
    finished_minutes_ago: int | None = None,
    sent: int = 0,
    opens: int = 0,
    test_only: bool = False,
) -> str:
    """An alert in ``status``, finished that many minutes before FINISHED (or not finished)."""
    with transaction(runtime.sessions) as session:
        row = create_alert(
            session,
            AlertDraft(
                headline=headline,
                url="https://news.example/a",
                topics=("israel",),
                test_only=test_only,
            ),
            default_hold=0,
            default_ttl=3600,
        )
        row.status, row.audience, row.sent, row.opens = status, sent, sent, opens
        if finished_minutes_ago is not None:
            row.finished_at = FINISHED - timedelta(minutes=finished_minutes_ago)
        return row.id


def recent(client: FlaskClient, runtime: Runtime) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "ops", "recent alerts test")
    response = client.get("/v1/ops/queues", headers={"Authorization": f"Bearer {key}"})
    assert_documented(yaml.safe_load(openapi.spec_bytes()), "/v1/ops/queues", "GET", response)
    found: list[dict[str, Any]] = response.json["recent_alerts"]
    return found


def test_finished_alerts_are_listed_newest_first_with_their_opens_and_open_rate(
    client: FlaskClient, runtime: Runtime
) -> None:
    older = alert(runtime, "Older", AlertStatus.SENT, finished_minutes_ago=30, sent=4, opens=1)
    newer = alert(runtime, "Newer", AlertStatus.SENT, finished_minutes_ago=1, sent=8, opens=2)
    held = alert(runtime, "Cancelled in hold", AlertStatus.CANCELLED, finished_minutes_ago=5)

    listed = recent(client, runtime)

    assert [a["id"] for a in listed] == [newer, held, older]
    assert [(a["sent"], a["opens"], a["open_rate"]) for a in listed] == [
        (8, 2, 0.25),
        (0, 0, None),  # nothing sent: no rate rather than 0 %
        (4, 1, 0.25),
    ]
    assert listed[1]["status"] == "cancelled"


def test_alerts_still_live_and_test_sends_are_not_listed(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert(runtime, "Held", AlertStatus.SCHEDULED)
    alert(runtime, "Sending", AlertStatus.SENDING, sent=3)
    alert(runtime, "To my phone", AlertStatus.SENT, finished_minutes_ago=1, sent=1, test_only=True)
    shown = alert(runtime, "Sent", AlertStatus.SENT, finished_minutes_ago=2, sent=1)

    assert [a["id"] for a in recent(client, runtime)] == [shown]


def test_only_the_last_ten_finished_alerts_are_listed(
    client: FlaskClient, runtime: Runtime
) -> None:
    for minutes in range(RECENT_ALERTS + 3):
        alert(runtime, f"Alert {minutes}", AlertStatus.EXPIRED, finished_minutes_ago=minutes)

    listed = recent(client, runtime)

    assert [a["headline"] for a in listed] == [f"Alert {m}" for m in range(RECENT_ALERTS)]
