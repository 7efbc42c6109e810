"""Looking into the broker's queues without consuming them: depth, oldest waiting age, in flight.

Reads only what the broker keeps per queue (list lengths, the oldest message's header, folder
listings); never scans every message. Each transport answers what it can; the rest is ``None``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from amqp import exceptions as amqp_exceptions

from notifier.core.broker import broker_connection, transport_options
from notifier.core.settings import Settings
from notifier.pipeline.routing import QUEUES

# kombu's Redis transport keeps each priority level in a list of its own: "<queue>", then
# "<queue>\x06\x163" and so on.
_REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(frozen=True, slots=True)
class QueueState:
    name: str
    depth: int | None
    oldest_age_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BrokerState:
    transport: str
    queues: list[QueueState]
    unacked: int | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "queues": [q.as_json() for q in self.queues],
            "unacked": self.unacked,
            "error": self.error,
        }


def inspect_broker(settings: Settings, now: float | None = None) -> BrokerState:
    now = now or time.time()
    url = settings.effective_broker_url
    try:
        if url.startswith(("redis://", "rediss://")):
            return _redis_state(url, settings.redis_key_prefix, now)
        if settings.embedded_broker:
            return _folder_state(settings, now)
        return _amqp_state(settings)
    except Exception as exc:
        transport = url.split("://", 1)[0]
        unknown = [QueueState(name, None, None) for name in QUEUES]
        return BrokerState(transport, unknown, None, error=type(exc).__name__)


def _published_at(raw: bytes | str | None) -> float | None:
    """The ``published_at`` header notifier's publisher puts on every message."""
    if raw is None:
        return None
    try:
        message = json.loads(raw)
        value = message.get("headers", {}).get("published_at")
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def _redis_state(url: str, prefix: str, now: float) -> BrokerState:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        queues = []
        for name in QUEUES:
            keys = [prefix + name + suffix for suffix in _REDIS_PRIORITY_SUFFIXES]
            pipe = client.pipeline()
            for key in keys:
                pipe.llen(key)
            for key in keys:
                pipe.lindex(key, -1)  # kombu pushes left and pops right: the oldest is last
            replies = pipe.execute()
            depth = sum(int(n) for n in replies[: len(keys)])
            stamps = [s for s in map(_published_at, replies[len(keys) :]) if s is not None]
            oldest = max(0.0, now - min(stamps)) if stamps else (0.0 if depth == 0 else None)
            queues.append(QueueState(name, depth, oldest))
        unacked = int(client.hlen(prefix + "unacked"))
        return BrokerState("redis", queues, unacked)
    finally:
        client.close()


def _folder_state(settings: Settings, now: float) -> BrokerState:
    folder = Path(transport_options(settings)["data_folder_in"])
    counts: dict[str, int] = dict.fromkeys(QUEUES, 0)
    oldest: dict[str, float] = {}
    for path in folder.glob("*.msg"):
        # kombu names each message file "<timestamp>_<uuid>.<queue>.msg".
        queue = path.name.rsplit(".", 2)[-2] if path.name.count(".") >= 2 else ""
        if queue not in counts:
            continue
        counts[queue] += 1
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue  # consumed while we looked
        oldest[queue] = min(oldest.get(queue, mtime), mtime)
    queues = [
        QueueState(name, counts[name], max(0.0, now - oldest[name]) if name in oldest else 0.0)
        for name in QUEUES
    ]
    return BrokerState("filesystem", queues, None)


def _amqp_state(settings: Settings) -> BrokerState:
    """Depths from a passive ``queue_declare``, which neither creates a queue nor touches a message.

    The oldest waiting age is ``None`` (unknown) whenever a queue holds messages: AMQP 0-9-1 tells
    a queue's length but not its head's age, and reading the head (``basic.get`` then a requeue)
    would reorder the queue and count as a redelivery. The management plugin's
    ``head_message_timestamp`` would answer, but it is not enabled on the servers this runs
    against, so nothing is guessed (docs/scaling.md). Unacked deliveries are likewise unknown.
    """
    queues = []
    with broker_connection(settings) as conn:
        channel = conn.channel()
        for name in QUEUES:
            try:
                declared = channel.queue_declare(queue=name, passive=True)
            except amqp_exceptions.NotFound:
                # No worker has declared it yet, so nothing was ever routed to it; the 404 closed
                # the channel, so the next queue needs a fresh one.
                channel = conn.channel()
                queues.append(QueueState(name, 0, 0.0))
                continue
            depth = int(declared.message_count)
            queues.append(QueueState(name, depth, 0.0 if depth == 0 else None))
    return BrokerState("amqp", queues, None)
