"""What "nothing lost" needs from Celery, shown on real messages rather than read off the config.

Each test publishes through notifier's own publisher and app, over the embedded filesystem broker
(no Redis, no worker process), then lets Celery's and kombu's own code handle the message as a
worker would: routing, acknowledgement after the task ran, requeue when the worker died, refusal
of anything that is not JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery import Celery
from celery.worker.request import Request
from kombu import Connection, Consumer, Producer
from kombu.exceptions import ContentDisallowed
from kombu.message import Message
from kombu.simple import SimpleQueue
from kombu.transport import filesystem

from notifier.core.outbox import MAX_COUNTDOWN
from tests.conftest import make_settings
from workers.celery_app import QUEUES, make_celery
from workers.publish import CeleryPublisher
from workers.tasks import send_batch


@pytest.fixture(autouse=True)
def _fresh_filesystem_broker_state() -> Iterator[None]:
    """Forget queue bindings between tests: each test's broker is a folder of its own.

    kombu keeps the filesystem transport's bindings process-wide and skips writing a binding it
    has seen, so a second data dir in one process would miss it and drop messages. A deployment
    has one data dir per process; the tests have one per test.
    """
    filesystem.Transport.global_state.clear()
    yield
    filesystem.Transport.global_state.clear()


@pytest.fixture
def app(tmp_path: Path) -> Celery:
    """notifier's Celery app in embedded mode: its broker is a folder under the data dir."""
    return make_celery(make_settings(tmp_path))


@pytest.fixture
def connection(app: Celery) -> Iterator[Connection]:
    with app.connection_for_read() as conn:
        yield conn


def queue(connection: Connection, app: Celery, name: str) -> SimpleQueue:
    """The named queue as the worker consumes it: acks required, JSON only."""
    (declared,) = [q for q in app.conf.task_queues if q.name == name]
    return connection.SimpleQueue(declared, no_ack=False, accept=app.conf.accept_content)


def drain(connection: Connection, app: Celery, name: str) -> list[Message]:
    """Every message waiting in queue ``name``, acknowledged (taken off the broker)."""
    taken = []
    with queue(connection, app, name) as q:
        while True:
            try:
                message = q.get(timeout=0.3)
            except q.Empty:
                return taken
            message.ack()
            taken.append(message)


def worker_request(message: Message, app: Celery) -> Request:
    """The worker's handling of ``message`` for the real ``send_batch`` task."""
    return Request(
        message,
        app=app,
        task=send_batch,
        on_ack=lambda *_: message.ack(),
        on_reject=lambda _log, _errors, requeue: message.reject(requeue=requeue),
    )


def failure(exc: BaseException) -> ExceptionInfo:
    try:
        raise exc
    except BaseException:
        return ExceptionInfo()


def test_each_trigger_reaches_its_own_queue_carrying_only_ids_as_json(
    app: Celery, connection: Connection
) -> None:
    publisher = CeleryPublisher(app)
    publisher.publish("send", "42")
    publisher.publish("plan", "alert-1")

    taken = {name: drain(connection, app, name) for name in QUEUES}
    assert [m.headers["task"] for m in taken["breaking"]] == ["notifier.send_batch"]
    assert [m.headers["task"] for m in taken["planner"]] == ["notifier.plan_alert"]
    assert taken["default"] == []
    (send,) = taken["breaking"]
    (plan,) = taken["planner"]
    assert send.content_type == plan.content_type == "application/json"
    assert send.payload[0] == [42] and plan.payload[0] == ["alert-1"]


def test_a_published_message_survives_a_restart_in_embedded_mode(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    CeleryPublisher(make_celery(settings)).publish("send", "7")

    restarted = make_celery(settings)  # a new process with the same settings
    with restarted.connection_for_read() as conn:
        (message,) = drain(conn, restarted, "breaking")
    assert message.payload[0] == [7]
    assert settings.broker_dir.is_relative_to(tmp_path)


def test_a_task_is_acknowledged_only_after_it_ran(app: Celery, connection: Connection) -> None:
    CeleryPublisher(app).publish("send", "1")
    with queue(connection, app, "breaking") as q:
        message = q.get(timeout=2)
        request = worker_request(message, app)

        request.on_accepted(pid=1234, time_accepted=0.0)
        assert not message.acknowledged  # a crash now would redeliver it

        request.on_success((False, {"sent": 1}, 0.1))
        assert message.acknowledged

    assert drain(connection, app, "breaking") == []


def test_a_task_whose_worker_died_is_put_back_on_its_queue(
    app: Celery, connection: Connection
) -> None:
    CeleryPublisher(app).publish("send", "1")
    with queue(connection, app, "breaking") as q:
        message = q.get(timeout=2)
        request = worker_request(message, app)
        request.on_accepted(pid=1234, time_accepted=0.0)

        request.on_failure(failure(WorkerLostError("killed by SIGKILL")))

    (again,) = drain(connection, app, "breaking")
    assert again.headers["id"] == message.headers["id"]


def test_a_task_that_raised_is_acknowledged_and_left_to_the_sweeper(
    app: Celery, connection: Connection
) -> None:
    """A bug must not loop a message through the workers forever; the outbox and sweeper retry."""
    CeleryPublisher(app).publish("send", "1")
    with queue(connection, app, "breaking") as q:
        message = q.get(timeout=2)
        request = worker_request(message, app)
        request.on_accepted(pid=1234, time_accepted=0.0)

        request.on_failure(failure(RuntimeError("a bug")))
        assert message.acknowledged

    assert drain(connection, app, "breaking") == []


def test_a_pickled_message_is_refused_on_receipt_and_json_is_not(
    app: Celery, connection: Connection
) -> None:
    """Only JSON crosses the broker: unpickling a message would run whatever code it carries."""
    (default,) = [q for q in app.conf.task_queues if q.name == "default"]
    producer = Producer(connection.default_channel)
    for serializer in ("pickle", "json"):
        producer.publish(
            {"sent_as": serializer},
            serializer=serializer,
            exchange=default.exchange,
            routing_key=default.routing_key,
            declare=[default],
        )
    accepted: list[Any] = []
    refused: list[Exception] = []

    def on_decode_error(message: Message, exc: Exception) -> None:
        refused.append(exc)
        message.ack()

    with Consumer(
        connection,
        queues=[default],
        accept=app.conf.accept_content,  # what a worker's consumer is given
        callbacks=[lambda body, message: (accepted.append(body), message.ack())],
        on_decode_error=on_decode_error,
    ):
        while len(accepted) + len(refused) < 2:
            connection.drain_events(timeout=2)

    assert accepted == [{"sent_as": "json"}]
    assert [type(exc) for exc in refused] == [ContentDisallowed]


def test_the_longest_retry_countdown_plus_a_full_run_fits_the_visibility_timeout(
    tmp_path: Path,
) -> None:
    """A Redis message unacked past its visibility timeout is delivered again (kombu#337).

    A worker holds a message with a countdown unacked until it is due, then runs it; both must
    fit, or a send waiting out its retry would go out twice.
    """
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0")
    conf = make_celery(settings).conf
    longest_hold: Any = MAX_COUNTDOWN + conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] > longest_hold
