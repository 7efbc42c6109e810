"""The Celery app carries the reliability settings that 'nothing lost' rests on."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from workers.celery_app import QUEUES, make_celery


def test_tasks_are_acked_late_and_redelivered_when_a_worker_dies(tmp_path: Path) -> None:
    conf = make_celery(make_settings(tmp_path)).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result is True
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.worker_soft_shutdown_timeout > 0


def test_redis_transport_has_timeouts_and_a_long_visibility_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:6379/0")
    options = make_celery(settings).conf.broker_transport_options
    assert options["visibility_timeout"] > make_celery(settings).conf.task_time_limit + 300
    assert options["socket_timeout"] and options["socket_connect_timeout"]


def test_breaking_sends_have_their_own_queue(tmp_path: Path) -> None:
    conf = make_celery(make_settings(tmp_path)).conf
    assert [q.name for q in conf.task_queues] == list(QUEUES)
    assert QUEUES[0] == "breaking"


def test_embedded_mode_uses_a_durable_filesystem_broker_under_the_data_dir(tmp_path: Path) -> None:
    conf = make_celery(make_settings(tmp_path)).conf
    assert conf.broker_url == "filesystem://"
    assert conf.broker_transport_options["data_folder_in"].startswith(str(tmp_path))
