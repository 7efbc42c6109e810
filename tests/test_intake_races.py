"""The API's webhook transaction (``record_event``) loses a race without a SAVEPOINT.

``record_event`` owns its transaction, so a concurrent delivery that wins the unique constraint
makes it run the whole transaction again (instead of rolling back to a SAVEPOINT, two round
trips on every delivery). Same outcomes as ``ingest_event``'s: one alert, one trigger, and the
loser answered as the winner's replay or as a duplicate.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.core.models import Alert, Outbox, WebhookEvent
from notifier.intake.events import Decision, IntakeResult, IntakeRules, record_event
from notifier.runtime import Runtime

RULES = IntakeRules(alerting_topics=(), hold_seconds=120, ttl_seconds=3600)
PAYLOAD = {
    "type": "article.published",
    "data": {
        "id": "race-1",
        "url": "https://news.example/race-1",
        "headline": "Two deliveries at once",
        "topics": ["world"],
        "breaking": True,
    },
}


class NoPublisher:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        return None


def count(runtime: Runtime, model: type[object]) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("second_id", "answer"),
    [("msg_a", (Decision.ALERT_CREATED, True)), ("msg_b", (Decision.DUPLICATE, False))],
    ids=["same-webhook-id", "same-article-new-webhook-id"],
)
def test_a_lost_race_is_decided_again_in_a_new_transaction(
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    second_id: str,
    answer: tuple[Decision, bool],
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN, so there is no race to lose")
    runtime.publisher = NoPublisher()
    caplog.set_level(logging.INFO, logger="notifier.intake.events")
    answers: list[IntakeResult] = []

    def second_delivery() -> None:
        answers.append(
            record_event(runtime.sessions, webhook_id=second_id, payload=PAYLOAD, rules=RULES)
        )

    racer = threading.Thread(target=second_delivery)

    def race_before_commit(_session: Session, _result: IntakeResult) -> None:
        racer.start()
        time.sleep(0.5)  # the racer now waits on the article's row, or collides at commit

    first = record_event(
        runtime.sessions,
        webhook_id="msg_a",
        payload=PAYLOAD,
        rules=RULES,
        also=race_before_commit,
    )
    racer.join(timeout=10)

    assert first.decision is Decision.ALERT_CREATED
    assert [(a.decision, a.replayed, a.alert_id) for a in answers] == [(*answer, first.alert_id)]
    assert count(runtime, Alert) == 1
    assert count(runtime, Outbox) == 1
    assert count(runtime, WebhookEvent) == (1 if second_id == "msg_a" else 2)
    retried = [r for r in caplog.records if r.getMessage().startswith("concurrent delivery")]
    assert len(retried) == 1  # the race was lost once, and decided again
