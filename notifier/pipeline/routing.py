"""The Celery queues, task names and routes, named once for the workers, the CLI and the ops view.

Producers publish by task name (the API never imports the task code) and the ops view reads the
queues by name, so these strings are a contract between processes that may run different
builds during a deploy: change one only with a plan for the messages already queued.
No Celery import here: the workers turn these names into Celery configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from notifier.core.vocabulary import TriggerKind


class QueueName(StrEnum):
    BREAKING = "breaking"  # batch sends: what a reader waits for
    PLANNER = "planner"  # paging an audience into batches
    DEFAULT = "default"  # periodic upkeep: the sweeper, stale devices


# Priority order. A worker listening with ``-Q breaking,planner,default`` drains breaking sends
# first: separate queues, not Redis message priorities (which Celery calls approximate at best).
QUEUES: Final = (QueueName.BREAKING, QueueName.PLANNER, QueueName.DEFAULT)
# What ``notifier worker`` listens to unless told otherwise: every queue, in priority order.
WORKER_QUEUES: Final = ",".join(QUEUES)


class TaskName(StrEnum):
    PLAN_ALERT = "notifier.plan_alert"
    SEND_BATCH = "notifier.send_batch"
    SWEEP = "notifier.sweep"
    DELETE_STALE_DEVICES = "notifier.delete_stale_devices"


@dataclass(frozen=True, slots=True)
class Route:
    task: TaskName
    queue: QueueName


# Where each kind of outbox trigger goes.
TRIGGER_ROUTES: Final[Mapping[TriggerKind, Route]] = {
    TriggerKind.PLAN: Route(TaskName.PLAN_ALERT, QueueName.PLANNER),
    TriggerKind.SEND: Route(TaskName.SEND_BATCH, QueueName.BREAKING),
}
# Periodic tasks are published by beat, not the outbox.
PERIODIC_ROUTES: Final[Mapping[TaskName, QueueName]] = {
    TaskName.SWEEP: QueueName.DEFAULT,
    TaskName.DELETE_STALE_DEVICES: QueueName.DEFAULT,
}


def task_routes() -> dict[str, dict[str, str]]:
    """Celery's ``task_routes``: every task to its queue, so a direct ``send_task`` lands right."""
    routes = {str(r.task): str(r.queue) for r in TRIGGER_ROUTES.values()}
    routes.update({str(task): str(queue) for task, queue in PERIODIC_ROUTES.items()})
    return {task: {"queue": queue} for task, queue in routes.items()}
