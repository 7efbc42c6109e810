"""RabbitMQ as the broker: what the promise needs from it, and what ops can see of its queues.

Runs on the real server (a vhost per test, see ``amqp_url``): queues and the exchange survive a
broker restart, publishes are confirmed, and the queue view counts waiting messages without taking
them, saying "unknown" for the age AMQP cannot tell.
"""

from __future__ import annotations

import json

import amqp
import pytest
from click.testing import CliRunner
from kombu import Connection

from notifier.cli.main import main
from notifier.core.broker import broker_connection
from notifier.core.settings import load_settings
from notifier.observability.queues import inspect_broker
from notifier.pipeline.routing import QUEUES
from tests.pipeline.conftest import DOWN_BROKER_URLS, Stack, subscribe_many
from tests.pipeline.test_observability import metric, ops_key

on_rabbitmq = pytest.mark.parametrize("broker", ["amqp"], indirect=True)


def queue_view(stack: Stack) -> dict:
    key = ops_key(stack)
    response = stack.client.get("/v1/ops/queues", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    return dict(response.json)


@on_rabbitmq
def test_queue_view_counts_waiting_messages_says_their_age_is_unknown_and_takes_none(
    stack: Stack,
) -> None:
    tokens = subscribe_many(stack, "rq", 12, ["israel"])
    alert_id = stack.post_alert()["id"]  # no worker yet: the plan trigger waits in RabbitMQ

    first = queue_view(stack)
    again = queue_view(stack)  # looking twice must not take or requeue the message
    text = stack.client.get("/metrics").get_data(as_text=True)
    env = {k: v for k, v in stack.env.items() if k.startswith("NOTIFIER_")}
    printed = CliRunner().invoke(main, ["status"], env=env)

    for view in (first, again):
        assert view["broker"]["transport"] == "amqp" and view["broker"]["error"] is None
        planner = next(q for q in view["queues"] if q["name"] == "planner")
        assert planner == {"name": "planner", "depth": 1, "oldest_age_seconds": None}
        assert all(q["depth"] == 0 for q in view["queues"] if q["name"] != "planner")
    assert metric(text, "notifier_queue_depth", queue="planner") == 1
    assert 'notifier_queue_oldest_age_seconds{queue="planner"}' not in text  # unknown: absent
    assert metric(text, "notifier_broker_up") == 1
    assert printed.exit_code == 0, printed.output
    assert "QUEUES (amqp)" in printed.output
    planner_line = next(line for line in printed.output.splitlines() if "planner" in line)
    assert "depth       1" in planner_line and "unknown" in planner_line

    stack.start_worker()
    view = stack.wait_for_status(alert_id)
    assert view["counts"]["sent"] == len(tokens)  # the message was still there for the worker
    assert all(q["depth"] == 0 for q in queue_view(stack)["queues"])


@on_rabbitmq
def test_queues_are_durable_and_publishes_confirmed(stack: Stack) -> None:
    stack.post_alert()  # publishing declares the exchange and the queue it routes to

    with broker_connection(stack.settings) as conn:
        conn.connect()
        assert conn.connection.confirm_publish is True  # kombu passes it to py-amqp
        channel = conn.channel()
        # Redeclaring with other flags is refused when they differ from the queue's: the
        # planner queue and the exchange were declared durable.
        with pytest.raises(amqp.exceptions.PreconditionFailed):
            channel.queue_declare(queue="planner", durable=False, auto_delete=False)
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.PreconditionFailed):
            channel.exchange_declare("notifier", "direct", durable=False, auto_delete=False)


@on_rabbitmq
def test_queues_no_worker_declared_yet_read_as_empty(stack: Stack) -> None:
    state = inspect_broker(stack.settings)
    assert state.error is None
    assert [(q.name, q.depth, q.oldest_age_seconds) for q in state.queues] == [
        (name, 0, 0.0) for name in QUEUES
    ]
    with Connection(stack.settings.effective_broker_url) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.NotFound):  # and looking declared nothing
            channel.queue_declare(queue="planner", passive=True)


def test_a_rabbitmq_that_does_not_answer_reads_as_unknown_not_empty(tmp_path) -> None:
    settings = load_settings(
        {
            "NOTIFIER_BROKER_URL": DOWN_BROKER_URLS["amqp"],
            "NOTIFIER_DATA_DIR": str(tmp_path),
        }
    )
    state = inspect_broker(settings)
    assert state.transport == "amqp" and state.error
    assert all(q.depth is None and q.oldest_age_seconds is None for q in state.queues)
    assert json.loads(json.dumps(state.as_json()))["unacked"] is None


def test_no_message_is_held_unacked_past_rabbitmqs_consumer_timeout() -> None:
    """The longest countdown plus the longest task must fit in RabbitMQ's redelivery clock."""
    from notifier.core.broker import LONGEST_UNACKED_SECONDS, RABBITMQ_DEFAULT_CONSUMER_TIMEOUT
    from notifier.core.outbox import MAX_COUNTDOWN
    from workers.celery_app import app

    assert MAX_COUNTDOWN + app.conf.task_time_limit <= LONGEST_UNACKED_SECONDS
    assert LONGEST_UNACKED_SECONDS < RABBITMQ_DEFAULT_CONSUMER_TIMEOUT


def test_amqp_brokers_get_publisher_confirms_and_redis_keeps_its_options(tmp_path) -> None:
    from notifier.core.broker import transport_options

    amqp_options = transport_options(
        load_settings({"NOTIFIER_BROKER_URL": "amqp://h//", "NOTIFIER_DATA_DIR": str(tmp_path)})
    )
    redis_options = transport_options(
        load_settings({"NOTIFIER_BROKER_URL": "redis://h/0", "NOTIFIER_DATA_DIR": str(tmp_path)})
    )
    assert amqp_options == {"confirm_publish": True}
    assert "confirm_publish" not in redis_options and redis_options["visibility_timeout"] == 900
