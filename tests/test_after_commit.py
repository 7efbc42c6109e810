"""Triggers are published by the commit that writes them: after it, never before, never on rollback.

The hook is installed by every :class:`Runtime` on its sessions (``core.outbox``), so views and
tasks only write outbox rows. SQLite, with a recording publisher in place of Celery.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.db import transaction
from notifier.core.models import Outbox, utcnow
from notifier.core.outbox import add_trigger
from notifier.core.settings import Settings
from notifier.pipeline.planner import plan_slice
from notifier.pipeline.sweeper import sweep
from notifier.runtime import NoPublisher, Runtime
from notifier.subscriptions.service import subscribe
from tests.conftest import make_settings, truncate_all


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


class BrokerDown:
    def __init__(self) -> None:
        self.attempts = 0

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.attempts += 1
        raise ConnectionError("broker unreachable")


class Boom(Exception):
    pass


@pytest.fixture
def settings(sqlite_file_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=sqlite_file_url)


@pytest.fixture
def recorder() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def runtime(settings: Settings, recorder: RecordingPublisher) -> Iterator[Runtime]:
    rt = Runtime.start(settings, publisher_factory=lambda _settings: recorder)
    truncate_all(rt.engine)
    yield rt
    rt.close()


def dispatched_at(runtime: Runtime, ref: str) -> list[object]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Outbox.dispatched_at).where(Outbox.ref == ref)))


def test_a_trigger_is_published_after_its_transaction_commits_and_not_before(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "alert-1")
        published_inside = list(recorder.published)
    assert published_inside == []
    assert recorder.published == [("plan", "alert-1")]
    assert [when is not None for when in dispatched_at(runtime, "alert-1")] == [True]


def test_a_rolled_back_transaction_publishes_nothing(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with pytest.raises(Boom), transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "alert-2")
        raise Boom
    assert recorder.published == []
    assert dispatched_at(runtime, "alert-2") == []


def test_a_rolled_back_trigger_is_forgotten_and_never_publishes_a_row_reusing_its_id(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    session = runtime.sessions()
    undone_id = add_trigger(session, "plan", "undone").id
    session.rollback()
    runtime.publisher = BrokerDown()  # another writer's row stays undispatched...
    with transaction(runtime.sessions) as other:
        reused_id = add_trigger(other, "plan", "someone-else").id
    assert reused_id == undone_id  # ...under the id SQLite hands out again after the rollback
    runtime.publisher = recorder
    add_trigger(session, "plan", "mine")
    session.commit()
    session.close()
    assert recorder.published == [("plan", "mine")]


def test_releasing_a_savepoint_waits_for_the_outer_commit(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with transaction(runtime.sessions) as session:
        with session.begin_nested():
            add_trigger(session, "plan", "alert-5")
        published_after_savepoint = list(recorder.published)
    assert published_after_savepoint == []
    assert recorder.published == [("plan", "alert-5")]


def test_a_trigger_of_a_rolled_back_savepoint_is_not_published(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "kept")
        with pytest.raises(Boom), session.begin_nested():
            add_trigger(session, "plan", "undone")
            raise Boom
    assert recorder.published == [("plan", "kept")]
    assert dispatched_at(runtime, "undone") == []


def test_a_publish_failure_is_not_raised_and_leaves_the_trigger_to_the_sweeper(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    down = BrokerDown()
    runtime.publisher = down
    with transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "alert-6")
    assert down.attempts == 1
    assert dispatched_at(runtime, "alert-6") == [None]

    sweep(
        runtime.sessions,
        recorder,
        requeue_after=timedelta(minutes=5),
        now=utcnow() + timedelta(minutes=1),
    )
    assert recorder.published == [("plan", "alert-6")]
    assert [when is not None for when in dispatched_at(runtime, "alert-6")] == [True]


def test_a_commit_publishes_only_the_triggers_it_added(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    runtime.publisher = BrokerDown()
    with transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "left-for-the-sweeper")
    runtime.publisher = recorder
    with transaction(runtime.sessions) as session:
        add_trigger(session, "plan", "this-one")
    assert recorder.published == [("plan", "this-one")]
    assert dispatched_at(runtime, "left-for-the-sweeper") == [None]


def test_a_runtime_without_a_publisher_commits_and_leaves_triggers_to_the_sweeper(
    settings: Settings,
) -> None:
    runtime = Runtime.start(settings)
    try:
        with transaction(runtime.sessions) as session:
            add_trigger(session, "plan", "alert-7")
        assert dispatched_at(runtime, "alert-7") == [None]
        with pytest.raises(NoPublisher):
            _ = runtime.publisher
    finally:
        runtime.close()


def test_creating_an_alert_publishes_its_plan_trigger_on_commit(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with transaction(runtime.sessions) as session:
        alert = create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", topics=("israel",)),
            default_hold=0,
            default_ttl=3600,
        )
    assert recorder.published == [("plan", alert.id)]


def test_the_planners_continuation_is_published_when_its_page_commits(
    runtime: Runtime, recorder: RecordingPublisher
) -> None:
    with transaction(runtime.sessions) as session:
        for i in range(3):
            subscribe(
                session, token=f"after-commit-{i:05d}-tokenxx", platform="web", topics=["israel"]
            )
        alert = create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", topics=("israel",)),
            default_hold=0,
            default_ttl=3600,
        )
    recorder.published.clear()
    result = plan_slice(runtime.sessions, alert.id, max_pages=1, time_budget=0)
    assert result.state == "continue"
    assert recorder.published == [("plan", alert.id)]
