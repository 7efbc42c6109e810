"""An alerting event recorded on a Core connection keeps the outbox promise and the alert rules.

``record_event`` given the engine creates a breaking article's alert without an ORM Session
(notifier/intake/events.py): its trigger is published only once the transaction has committed,
stays undispatched for the sweeper when the broker is down, and is never published when the
transaction rolls back. The alert is the one the Session path would have created, and two
deliveries racing on PostgreSQL still make one alert and one trigger.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from notifier.alerts.service import alert_view
from notifier.core.models import Alert, Outbox, WebhookEvent, utcnow
from notifier.core.outbox import dispatch
from notifier.core.vocabulary import TriggerKind
from notifier.intake.events import Decision, IntakeResult, IntakeRules, record_event
from notifier.runtime import Runtime

RULES = IntakeRules(
    alerting_topics=("israel",), hold_seconds=30, ttl_seconds=3600, default_locale="fr"
)


def breaking(article_id: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": article_id,
        "url": f"https://news.example/{article_id}",
        "headline": "Sirens in the north",
        "summary": "What we know so far.",
        "topics": ["world", "breaking", "world"],
        "breaking": True,
        **extra,
    }
    return {"type": "article.published", "data": data}


def count(runtime: Runtime, model: type[object]) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def undispatched(runtime: Runtime) -> list[tuple[TriggerKind, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(Outbox.kind, Outbox.ref).where(Outbox.dispatched_at.is_(None))
        ).all()
    return [(row.kind, row.ref) for row in rows]


class CommittedCheckingPublisher:
    """Records each publish with what another connection sees at that moment: the alert and its
    trigger must already be committed when the message leaves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.published: list[tuple[str, str, bool]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        with self.runtime.sessions() as other:
            visible = other.get(Alert, ref) is not None
        self.published.append((kind, ref, visible))


class BrokerDown:
    def __init__(self) -> None:
        self.attempts = 0

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.attempts += 1
        raise ConnectionError("broker unreachable")


class Recording:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


class Boom(Exception):
    pass


def test_the_trigger_is_published_once_the_alert_is_committed(runtime: Runtime) -> None:
    publisher = CommittedCheckingPublisher(runtime)
    used: list[bool] = []

    def also(executor: Session | Connection, _result: IntakeResult) -> None:
        used.append(isinstance(executor, Connection))

    answer = record_event(
        runtime.sessions,
        webhook_id="msg_core",
        payload=breaking("core-1"),
        rules=RULES,
        also=also,
        engine=runtime.engine,
        publisher=lambda: publisher,
    )

    assert answer.decision is Decision.ALERT_CREATED
    assert used == [True]  # decided on the Core connection
    assert publisher.published == [(TriggerKind.PLAN, answer.alert_id, True)]
    assert undispatched(runtime) == []


def test_with_the_broker_down_the_event_is_recorded_and_the_sweeper_sends_the_trigger(
    runtime: Runtime,
) -> None:
    down = BrokerDown()

    answer = record_event(
        runtime.sessions,
        webhook_id="msg_down",
        payload=breaking("down-1"),
        rules=RULES,
        engine=runtime.engine,
        publisher=lambda: down,
    )

    assert answer.decision is Decision.ALERT_CREATED
    assert down.attempts == 1
    assert undispatched(runtime) == [(TriggerKind.PLAN, answer.alert_id)]
    assert count(runtime, WebhookEvent) == 1
    recording = Recording()
    assert dispatch(runtime.sessions, recording, now=utcnow() + timedelta(seconds=60)) == 1
    assert recording.published == [(TriggerKind.PLAN, answer.alert_id)]
    assert undispatched(runtime) == []


def test_without_a_publisher_the_trigger_waits_for_the_sweeper(runtime: Runtime) -> None:
    answer = record_event(
        runtime.sessions,
        webhook_id="msg_none",
        payload=breaking("none-1"),
        rules=RULES,
        engine=runtime.engine,
        publisher=lambda: None,
    )

    assert undispatched(runtime) == [(TriggerKind.PLAN, answer.alert_id)]


def test_a_transaction_that_fails_publishes_nothing_and_leaves_nothing(runtime: Runtime) -> None:
    recording = Recording()

    def fail(_executor: Session | Connection, _result: IntakeResult) -> None:
        raise Boom

    with pytest.raises(Boom):
        record_event(
            runtime.sessions,
            webhook_id="msg_boom",
            payload=breaking("boom-1"),
            rules=RULES,
            also=fail,
            engine=runtime.engine,
            publisher=lambda: recording,
        )

    assert recording.published == []
    assert (count(runtime, Alert), count(runtime, Outbox), count(runtime, WebhookEvent)) == (
        0,
        0,
        0,
    )


def test_the_core_alert_is_the_one_the_session_path_creates(runtime: Runtime) -> None:
    extra = {
        "url": "https://news.example/same",
        "urgent": True,
        "locale": "de",
        "translations": {"fr": {"headline": "Sirènes dans le nord", "url": "https://x.fr/1"}},
        "locales": ["FR", "de"],
    }
    by_core = record_event(
        runtime.sessions,
        webhook_id="msg_by_core",
        payload=breaking("same-a", **extra),
        rules=RULES,
        engine=runtime.engine,
    )
    by_session = record_event(
        runtime.sessions,
        webhook_id="msg_by_session",
        payload=breaking("same-b", **extra),
        rules=RULES,
    )

    def comparable(view: dict[str, object] | None) -> dict[str, object]:
        assert view is not None
        skip = {"id", "article_id", "send_at", "expires_at", "timings"}
        return {key: value for key, value in view.items() if key not in skip}

    assert by_core.decision is by_session.decision is Decision.ALERT_CREATED
    assert comparable(by_core.alert) == comparable(by_session.alert)
    with runtime.sessions() as session:
        core_alert = session.get(Alert, by_core.alert_id)
        assert core_alert is not None
        # What was stored is what was answered.
        assert alert_view(core_alert) == by_core.alert
        assert core_alert.expires_at - core_alert.send_at == timedelta(seconds=3600)
        assert core_alert.send_at - core_alert.created_at == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("second_id", "answer"),
    [("msg_a", (Decision.ALERT_CREATED, True)), ("msg_b", (Decision.DUPLICATE, False))],
    ids=["same-webhook-id", "same-article-new-webhook-id"],
)
def test_concurrent_deliveries_make_one_alert_and_publish_it_once(
    runtime: Runtime, second_id: str, answer: tuple[Decision, bool]
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN, so there is no race to lose")
    recording = Recording()
    answers: list[IntakeResult] = []
    payload = breaking("race-core")

    def second_delivery() -> None:
        answers.append(
            record_event(
                runtime.sessions,
                webhook_id=second_id,
                payload=payload,
                rules=RULES,
                engine=runtime.engine,
                publisher=lambda: recording,
            )
        )

    racer = threading.Thread(target=second_delivery)

    def race_before_commit(_executor: Session | Connection, _result: IntakeResult) -> None:
        racer.start()
        time.sleep(0.5)  # the racer now waits on the article's row

    first = record_event(
        runtime.sessions,
        webhook_id="msg_a",
        payload=payload,
        rules=RULES,
        also=race_before_commit,
        engine=runtime.engine,
        publisher=lambda: recording,
    )
    racer.join(timeout=10)

    assert first.decision is Decision.ALERT_CREATED
    assert [(a.decision, a.replayed, a.alert_id) for a in answers] == [(*answer, first.alert_id)]
    assert (count(runtime, Alert), count(runtime, Outbox)) == (1, 1)
    assert count(runtime, WebhookEvent) == (1 if second_id == "msg_a" else 2)
    assert recording.published == [(TriggerKind.PLAN, first.alert_id)]
    assert undispatched(runtime) == []
