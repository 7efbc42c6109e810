"""Queues, task names and routes are named once, and producer, workers and ops view agree on them.

A trigger published under one name and consumed or counted under another is lost work that no
error reports, so these tests go through the real pieces: the Celery app's router, the task
registry, the publisher over the embedded broker, the ops view's queue inspection, and the
``notifier worker`` command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import workers.tasks  # noqa: F401  (registers the tasks on the module's app)
from notifier.cli.main import main
from notifier.core.vocabulary import TriggerKind
from notifier.observability.queues import inspect_broker
from notifier.pipeline.routing import (
    PERIODIC_ROUTES,
    QUEUES,
    TRIGGER_ROUTES,
    QueueName,
    TaskName,
)
from tests.conftest import make_settings
from workers import celery_app
from workers.celery_app import make_celery
from workers.publish import CeleryPublisher


def test_every_trigger_kind_has_a_route() -> None:
    assert set(TRIGGER_ROUTES) == set(TriggerKind)


def test_breaking_sends_come_first_in_the_queue_order() -> None:
    assert QUEUES[0] is QueueName.BREAKING
    assert set(QUEUES) == set(QueueName)


def test_the_celery_router_sends_each_task_to_its_named_queue(tmp_path: Path) -> None:
    app = make_celery(make_settings(tmp_path))
    expected = {r.task: r.queue for r in TRIGGER_ROUTES.values()} | dict(PERIODIC_ROUTES)
    assert set(expected) == set(TaskName)
    for task, queue in expected.items():
        assert app.amqp.router.route({}, str(task))["queue"].name == queue


def test_every_task_name_is_a_registered_task() -> None:
    assert {str(name) for name in TaskName} <= set(celery_app.app.tasks)


def test_beat_schedules_periodic_tasks_on_their_queue(tmp_path: Path) -> None:
    schedule = make_celery(make_settings(tmp_path)).conf.beat_schedule
    scheduled = {entry["task"]: entry["options"]["queue"] for entry in schedule.values()}
    assert scheduled == {str(t): str(q) for t, q in PERIODIC_ROUTES.items()}


@pytest.mark.parametrize("kind", list(TriggerKind))
def test_a_published_trigger_waits_in_the_queue_the_ops_view_reports(
    tmp_path: Path, kind: TriggerKind
) -> None:
    settings = make_settings(tmp_path)
    publisher = CeleryPublisher(make_celery(settings))
    publisher.publish(kind, "42")
    broker = inspect_broker(settings, now=time.time())
    depths = {q.name: q.depth for q in broker.queues}
    routed = TRIGGER_ROUTES[kind].queue
    assert depths == {name: (1 if name == routed else 0) for name in QUEUES}


def test_notifier_worker_listens_to_every_queue_in_priority_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []

    def worker_main(argv: list[str]) -> Any:
        started.append(argv)

    monkeypatch.setattr(celery_app.app, "worker_main", worker_main)
    result = CliRunner().invoke(main, ["worker"], env={"NOTIFIER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    argv = started[0]
    assert argv[argv.index("-Q") + 1].split(",") == list(QUEUES)


def test_workers_publish_no_task_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reads Celery's task events, and each costs a publish per batch (issue 12)."""
    started: list[list[str]] = []
    monkeypatch.setattr(celery_app.app, "worker_main", started.append)
    result = CliRunner().invoke(main, ["worker"], env={"NOTIFIER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "-E" not in started[0] and "--task-events" not in started[0]
    conf = make_celery(make_settings(tmp_path)).conf
    assert not conf.worker_send_task_events
    assert not conf.task_send_sent_event
