"""The Celery application: broker, queues and the reliability settings the promise rests on.

Tasks carry ids only; the database is the source of truth, so every setting here favours "run
again" over "lose": late acks, requeue on worker loss, prefetch of one.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from notifier.core.broker import transport_options
from notifier.core.settings import Settings, load_settings
from notifier.pipeline.routing import PERIODIC_ROUTES, QUEUES, QueueName, TaskName, task_routes

__all__ = ["QUEUES", "app", "make_celery"]

SEND_TIME_LIMIT = 120


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    app = Celery("notifier", broker=settings.effective_broker_url)
    # Durable exchange and queues with persistent messages (Celery's default delivery mode): on
    # RabbitMQ they outlive a broker restart. Classic queues, not quorum: Celery's countdowns on
    # quorum queues need its native delayed delivery, which needs topic exchanges (this direct
    # one is not supported) and drops global QoS; docs/scaling.md says when to switch.
    exchange = Exchange("notifier", type="direct", durable=True)
    app.conf.update(
        broker_transport_options=transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_queues=[
            Queue(str(name), exchange, routing_key=str(name), durable=True) for name in QUEUES
        ],
        task_default_delivery_mode="persistent",
        task_default_queue=str(QueueName.DEFAULT),
        task_default_exchange="notifier",
        task_default_routing_key=str(QueueName.DEFAULT),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_routes=task_routes(),
        task_time_limit=SEND_TIME_LIMIT + 30,
        task_soft_time_limit=SEND_TIME_LIMIT,
        # On SIGTERM (a deploy), give in-flight tasks time to finish, then requeue the rest.
        worker_soft_shutdown_timeout=30.0,
        task_serializer="json",
        accept_content=["json"],
        # No task events: nothing in notifier reads them (`notifier status` and the ops page ask
        # the workers over the broadcast channel, which works without them), and each batch
        # cost a publish per event in the worker and the planner. For Flower or `celery events`,
        # `celery -A workers.celery_app control enable_events` turns them on at run time.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
    )
    app.conf.beat_schedule = {
        "sweep": {
            "task": str(TaskName.SWEEP),
            "schedule": settings.sweep_interval_seconds,
            # A sweep older than its interval is superseded by the next one.
            "options": {
                "queue": str(PERIODIC_ROUTES[TaskName.SWEEP]),
                "expires": settings.sweep_interval_seconds * 2,
            },
        },
        "delete-stale-devices": {
            "task": str(TaskName.DELETE_STALE_DEVICES),
            "schedule": 3600.0,
            "options": {
                "queue": str(PERIODIC_ROUTES[TaskName.DELETE_STALE_DEVICES]),
                "expires": 3000,
            },
        },
    }
    app.conf.beat_max_loop_interval = min(5.0, settings.sweep_interval_seconds)
    app.conf.notifier_settings = settings
    app.conf.imports = ["workers.tasks"]
    return app


app = make_celery()
