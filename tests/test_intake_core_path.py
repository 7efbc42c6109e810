"""A first delivery of an article event is recorded on a Core connection, without an ORM Session.

``record_event`` given the engine takes that path for an event that is not an unpublish, and
leaves to the Session anything that involves an existing alert: an article that has one (its
edit goes through the ORM), a stale revision, a replay. The decisions are the same. (Alerts the
Core path creates: tests/test_intake_core_alerts.py. On PostgreSQL an event that cannot alert is
one statement, a CTE, so these tests check its decisions there.)
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from notifier.core.models import Alert, Article, WebhookEvent
from notifier.intake.events import Decision, IntakeResult, IntakeRules, record_event
from notifier.runtime import Runtime

RULES = IntakeRules(alerting_topics=("israel",), hold_seconds=120, ttl_seconds=3600)


def published(article_id: str, *, breaking: bool, revision: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": article_id,
        "url": f"https://news.example/{article_id}",
        "headline": "A headline",
        "topics": ["world"],
        "breaking": breaking,
    }
    if revision is not None:
        data["revision"] = revision
    return {"type": "article.updated" if revision else "article.published", "data": data}


class NoSessions:
    """A session factory that must not be used: the test fails if the Session path runs."""

    def __call__(self) -> Session:
        raise AssertionError("the Session path ran")


def no_sessions() -> sessionmaker[Session]:
    return NoSessions()  # type: ignore[return-value]


def count(runtime: Runtime, model: type[object]) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_not_breaking_event_needs_no_session_and_its_replay_is_answered(
    runtime: Runtime,
) -> None:
    seen: list[tuple[bool, Decision, bool]] = []

    def also(executor: Session | Connection, result: IntakeResult) -> None:
        seen.append((isinstance(executor, Connection), result.decision, result.replayed))

    # The redelivery's Core attempt finds the webhook-id recorded, rolls back and is answered
    # from the record by the Session path.
    for sessions in (no_sessions(), runtime.sessions):
        answer = record_event(
            sessions,
            webhook_id="msg_quiet",
            payload=published("quiet-1", breaking=False),
            rules=RULES,
            also=also,
            engine=runtime.engine,
        )
        assert (answer.decision, answer.alert) == (Decision.NOT_BREAKING, None)

    assert seen == [(True, Decision.NOT_BREAKING, False), (False, Decision.NOT_BREAKING, True)]
    assert count(runtime, Article) == 1
    assert count(runtime, WebhookEvent) == 1


def test_an_ignored_event_needs_no_session(runtime: Runtime) -> None:
    answer = record_event(
        no_sessions(),
        webhook_id="msg_other",
        payload={"type": "comment.created", "data": {}},
        rules=RULES,
        engine=runtime.engine,
    )
    assert answer.decision is Decision.IGNORED
    assert count(runtime, WebhookEvent) == 1


@pytest.mark.parametrize("revision", [None, 1], ids=["article-with-alert", "stale-revision"])
def test_an_alert_or_a_stale_revision_goes_the_session_way(
    runtime: Runtime, revision: int | None
) -> None:
    first = record_event(
        runtime.sessions,
        webhook_id="msg_1",
        payload=published("story", breaking=True, revision=2 if revision else None),
        rules=RULES,
        engine=runtime.engine,
    )
    assert first.decision is Decision.ALERT_CREATED

    answer = record_event(
        runtime.sessions,
        webhook_id="msg_2",
        payload=published("story", breaking=False, revision=revision),
        rules=RULES,
        engine=runtime.engine,
    )

    expected = Decision.DUPLICATE if revision is None else Decision.STALE_REVISION
    assert (answer.decision, answer.alert_id) == (expected, first.alert_id)
    assert count(runtime, Alert) == 1
    assert count(runtime, WebhookEvent) == 2
    with pytest.raises(AssertionError, match="Session path ran"):
        record_event(
            no_sessions(),
            webhook_id="msg_3",
            payload=published("story", breaking=False, revision=revision),
            rules=RULES,
            engine=runtime.engine,
        )
    assert count(runtime, WebhookEvent) == 2  # the Core attempt was rolled back


def test_a_concurrent_redelivery_is_answered_as_the_replay(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers at BEGIN, so there is no race to lose")
    payload = published("quiet-race", breaking=False)
    answers: list[IntakeResult] = []

    def second_delivery() -> None:
        answers.append(
            record_event(
                runtime.sessions,
                webhook_id="msg_race",
                payload=payload,
                rules=RULES,
                engine=runtime.engine,
            )
        )

    racer = threading.Thread(target=second_delivery)

    def race_before_commit(_executor: Session | Connection, _result: IntakeResult) -> None:
        racer.start()
        time.sleep(0.5)  # the racer now waits on the article's row

    first = record_event(
        no_sessions(),
        webhook_id="msg_race",
        payload=payload,
        rules=RULES,
        also=race_before_commit,
        engine=runtime.engine,
    )
    racer.join(timeout=10)

    assert (first.decision, first.replayed) == (Decision.NOT_BREAKING, False)
    assert [(a.decision, a.replayed) for a in answers] == [(Decision.NOT_BREAKING, True)]
    assert count(runtime, WebhookEvent) == 1


@pytest.mark.parametrize("breaking", [False, True], ids=["quiet", "breaking"])
def test_an_update_to_an_unpublished_article_is_recorded_without_an_alert(
    runtime: Runtime, breaking: bool
) -> None:
    record_event(
        runtime.sessions,
        webhook_id="msg_first",
        payload=published("pulled", breaking=False),
        rules=RULES,
        engine=runtime.engine,
    )
    record_event(
        runtime.sessions,
        webhook_id="msg_pulled",
        payload={"type": "article.unpublished", "data": {"id": "pulled"}},
        rules=RULES,
        engine=runtime.engine,
    )
    update = published("pulled", breaking=breaking, revision=3)

    answer = record_event(
        no_sessions(), webhook_id="msg_update", payload=update, rules=RULES, engine=runtime.engine
    )

    assert (answer.decision, answer.alert) == (Decision.ARTICLE_UNPUBLISHED, None)
    assert count(runtime, Alert) == 0
    assert count(runtime, WebhookEvent) == 3


def test_a_republished_article_is_back_on_the_site(runtime: Runtime) -> None:
    record_event(
        runtime.sessions,
        webhook_id="msg_first",
        payload=published("back", breaking=False),
        rules=RULES,
        engine=runtime.engine,
    )
    record_event(
        runtime.sessions,
        webhook_id="msg_pulled",
        payload={"type": "article.unpublished", "data": {"id": "back"}},
        rules=RULES,
        engine=runtime.engine,
    )

    answer = record_event(
        no_sessions(),
        webhook_id="msg_back",
        payload=published("back", breaking=False),
        rules=RULES,
        engine=runtime.engine,
    )

    assert answer.decision is Decision.NOT_BREAKING
    with runtime.sessions() as session:
        article = session.get(Article, "back")
        assert article is not None and article.unpublished_at is None
