"""Publishing triggers to Celery by task name, so the API never imports the task code."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the API imports this module at start; Celery loads on its first publish
    from celery import Celery

    from notifier.core.settings import Settings

from notifier.core.vocabulary import TriggerKind
from notifier.pipeline.routing import TRIGGER_ROUTES


class CeleryPublisher:
    """The :class:`notifier.core.outbox.Publisher` over a Celery app; messages carry ids only."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish(self, kind: TriggerKind, ref: str, countdown: float = 0) -> None:
        route = TRIGGER_ROUTES[kind]
        # A batch id travels as a number (the task's argument type); an alert id is a UUID.
        arg: str | int = int(ref) if kind == TriggerKind.SEND else ref
        self.app.send_task(
            str(route.task),
            args=[arg],
            queue=str(route.queue),
            routing_key=str(route.queue),
            countdown=countdown or None,
            # Lets the ops view tell how long the oldest message has waited in its queue.
            headers={"published_at": time.time()},
            retry=True,
            # Bounded retry: a down broker must not hang a webhook; the outbox keeps the trigger.
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )


def celery_publisher(settings: Settings) -> CeleryPublisher:
    """The ``publisher_factory`` of a process that is not a worker (the API): its own Celery app.

    ``workers.celery_app`` is imported here, on the first publish, because importing it builds
    the workers' own app from the environment, which a process that never publishes never needs.
    """
    from workers.celery_app import make_celery

    return CeleryPublisher(make_celery(settings))
