"""Broker connection options shared by the Celery app, readiness checks and the ops view.

Kept free of Celery so the API can check the broker without importing the worker code.
"""

from __future__ import annotations

from typing import Any

from kombu import Connection

from notifier.core.settings import Settings

# Above the longest task (send tasks are capped at 120 s) plus the longest retry countdown we
# schedule through the broker (300 s): a message not acked within this is redelivered, so a
# shorter value would run long tasks twice (kombu#337, celery#2599).
VISIBILITY_TIMEOUT = 900

# RabbitMQ's own redelivery clock is the server's ``consumer_timeout`` (30 min by default since
# 3.8.15): a delivery not acked within it closes the channel and requeues the message. It must stay
# above the longest a worker holds a message unacked: Celery keeps a countdown task in the worker
# until it is due (on classic queues), so the longest countdown (``outbox.MAX_COUNTDOWN``, 600 s)
# plus the hard time limit of a task (150 s). It is a server setting (rabbitmq.conf), not a client
# one, so docs/scaling.md says how to set it; a test keeps this figure below the default.
LONGEST_UNACKED_SECONDS = 600 + 150
RABBITMQ_DEFAULT_CONSUMER_TIMEOUT = 1800

_AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def is_amqp(url: str) -> bool:
    """Whether ``url`` names a RabbitMQ (AMQP 0-9-1) broker."""
    return url.startswith(_AMQP_SCHEMES)


def transport_options(settings: Settings) -> dict[str, Any]:
    if settings.embedded_broker:
        base = settings.broker_dir
        for sub in ("queue", "processed"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(base / "queue"),
            "data_folder_out": str(base / "queue"),
            "processed_folder": str(base / "processed"),
            "store_processed": False,
            "control_folder": str(base / "control"),
            # kombu polls the folder; its 1 s default would add up to a second to every hop.
            "polling_interval": 0.1,
        }
    if settings.effective_broker_url.startswith(("redis://", "rediss://")):
        return {
            "global_keyprefix": settings.redis_key_prefix,
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "socket_timeout": 5,
            "socket_connect_timeout": 5,
            "retry_on_timeout": True,
            "health_check_interval": 25,
            "unacked_restore_interval": 30,
        }
    if is_amqp(settings.effective_broker_url):
        return {
            # Publisher confirms: a publish returns only once RabbitMQ has taken the message
            # (written it to disk for a durable queue and a persistent message), so a trigger the
            # outbox marks dispatched is really in the broker, not in a socket buffer.
            "confirm_publish": True,
        }
    return {}


def broker_connection(settings: Settings) -> Connection:
    return Connection(
        settings.effective_broker_url,
        transport_options=transport_options(settings),
        connect_timeout=2,
    )


def ping_broker(settings: Settings) -> None:
    """Raise if the broker cannot be reached within a couple of seconds."""
    with broker_connection(settings) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        if settings.effective_broker_url.startswith(("redis://", "rediss://")):
            conn.default_channel.client.ping()
