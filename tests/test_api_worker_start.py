"""A gunicorn worker builds its trigger publisher when it starts, not during its first alert."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from flask import Flask

from notifier.core.settings import Settings
from notifier.http.app import create_app
from notifier.http.server import gunicorn_options
from notifier.runtime import Runtime


@dataclass
class Recording:
    published: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        self.published.append((kind, ref))


@dataclass
class Worker:
    """What gunicorn's post_worker_init hook is given: the loaded app and a logger."""

    wsgi: Flask
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("test.gunicorn"))


def test_a_worker_builds_its_publisher_before_its_first_request(runtime: Runtime) -> None:
    built: list[Recording] = []

    def factory(_settings: Settings) -> Recording:
        built.append(Recording())
        return built[-1]

    runtime.publisher_factory = factory
    app = create_app(runtime=runtime)
    hook = gunicorn_options(runtime.settings, workers=1, threads=1)["post_worker_init"]

    hook(Worker(app))

    assert len(built) == 1
    assert runtime.publisher is built[0]  # the first alert publishes through it, built once


def test_a_publisher_that_cannot_be_built_does_not_stop_the_worker(runtime: Runtime) -> None:
    def factory(_settings: Settings) -> Recording:
        raise ConnectionError("no broker configuration")

    runtime.publisher_factory = factory
    hook = gunicorn_options(runtime.settings, workers=1, threads=1)["post_worker_init"]

    hook(Worker(create_app(runtime=runtime)))  # logged, not raised

    with pytest.raises(ConnectionError):
        runtime.publisher_if_any()  # the first publish tries again, and its failure is handled
