"""Fault 15: two beats on two hosts, one killed; sweeping goes on and no sweep's work is doubled.

Each beat schedules the sweep, so with two beats two sweeps run side by side. Two processes
looping over the sweep stand in for them where the race is under test (a beat only adds a timer);
each publishes into one shared file, so every trigger published by either shows up there once
per publish. Killing one with SIGKILL while it may hold the lease is the harshest case: it never
releases the lease, so the survivor must take it over once it expires. The last test runs the
real thing: two `notifier beat` processes, a worker, the emulator, and one beat SIGKILLed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier.core.db import make_engine, make_session_factory
from notifier.core.models import Heartbeat, Outbox, utcnow
from notifier.core.vocabulary import TriggerKind
from notifier.pipeline.sweeper import LEASE_NAME, SweepReport, sweep, take_lease
from tests.pipeline.conftest import Stack, subscribe_many

# The sweeper's premise is a lease longer than any sweep (60 s in production). A sweep of 60
# triggers at PUBLISH_LATENCY each took 1.1-2.0 s on SQLite on a loaded 2-core box: a 2 s lease
# could expire mid-sweep and let the other beat publish the same rows, a broken premise, not a
# bug. 6 s keeps the premise with room, and still has the survivor take over within seconds.
LEASE = timedelta(seconds=6)
PUBLISH_LATENCY = 0.005  # a broker round trip; widens the window in which two sweeps could race


class FilePublisher:
    """Appends one line per publish; O_APPEND keeps lines of two processes whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        time.sleep(PUBLISH_LATENCY)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{kind} {ref}\n".encode())
        finally:
            os.close(fd)


def sweep_forever(db_url: str, published: str) -> None:
    """One beat's sweeps, every 100 ms (a real beat sweeps every few seconds)."""
    sessions = make_session_factory(make_engine(db_url))
    publisher = FilePublisher(Path(published))
    while True:
        sweep(sessions, publisher, requeue_after=timedelta(seconds=60), lease_for=LEASE)
        time.sleep(0.1)


@pytest.fixture
def beats(db_url: str, tmp_path: Path) -> Iterator[tuple[list[BaseProcess], Path]]:
    published = tmp_path / "published.txt"
    published.touch()
    spawn = multiprocessing.get_context("spawn")
    procs = [
        spawn.Process(target=sweep_forever, args=(db_url, str(published)), daemon=True)
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    yield procs, published
    for proc in procs:
        if proc.is_alive():
            proc.kill()
        proc.join(5)


def lose_triggers(db_url: str, prefix: str, count: int) -> set[str]:
    """Outbox rows nobody published (the API died after commit), old enough for the sweeper."""
    old = utcnow() - timedelta(minutes=1)
    refs = {f"{prefix}-{i:03d}" for i in range(count)}
    sessions = make_session_factory(make_engine(db_url))
    with sessions.begin() as session:
        session.add_all(
            Outbox(kind=TriggerKind.PLAN, ref=ref, due_at=old, created_at=old) for ref in refs
        )
    return refs


def undispatched(database_url: str) -> list[str]:
    with make_session_factory(make_engine(database_url))() as session:
        return list(session.scalars(select(Outbox.ref).where(Outbox.dispatched_at.is_(None))))


def sweeper_heartbeat(db_url: str) -> datetime | None:
    with make_session_factory(make_engine(db_url))() as session:
        return session.scalar(select(Heartbeat.at).where(Heartbeat.name == "sweeper"))


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def publishes(published: Path, refs: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in published.read_text().splitlines():
        ref = line.split(" ", 1)[1]
        if ref in refs:
            counts[ref] += 1
    return counts


def test_two_beats_sweep_each_lost_trigger_once_and_one_killed_leaves_sweeping_going_on(
    db_url: str, beats: tuple[list[BaseProcess], Path]
) -> None:
    procs, published = beats
    wait_for(lambda: sweeper_heartbeat(db_url) is not None, 60, "the first sweep")

    both_alive = lose_triggers(db_url, "both", 60)
    wait_for(lambda: len(publishes(published, both_alive)) == 60, 30, "both beats' sweeps")
    # A trigger is published, then marked; a kill between the two would publish it once more
    # (at least once, absorbed by the idempotent planner). Kill between sweeps' rows instead.
    wait_for(lambda: not undispatched(db_url), 30, "the published triggers to be marked")

    killed = procs[0]
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)  # no release: if it held the lease, it must expire
    killed.join(5)
    after_kill = sweeper_heartbeat(db_url)
    assert after_kill is not None

    one_alive = lose_triggers(db_url, "one", 60)
    wait_for(lambda: len(publishes(published, one_alive)) == 60, 30, "the survivor's sweeps")
    wait_for(
        lambda: (sweeper_heartbeat(db_url) or after_kill) > after_kill + LEASE,
        30,
        "the sweeper's heartbeat to keep advancing past the dead beat's lease",
    )
    time.sleep(1)  # several more sweeps, which must not publish anything again

    assert procs[1].is_alive()
    both, one = publishes(published, both_alive), publishes(published, one_alive)
    assert set(both) == both_alive and set(one) == one_alive
    assert set(both.values()) == {1}, "a trigger was published twice while both beats ran"
    assert set(one.values()) == {1}, "a trigger was published twice after one beat died"


def test_a_sweep_finding_the_lease_taken_does_nothing(db_url: str) -> None:
    sessions = make_session_factory(make_engine(db_url))
    refs = lose_triggers(db_url, "held", 3)
    assert take_lease(sessions, LEASE_NAME, utcnow(), timedelta(seconds=60)) is not None

    class Recorder:
        published: list[str] = []

        def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
            self.published.append(ref)

    skipped = sweep(sessions, Recorder(), requeue_after=timedelta(seconds=60))
    assert skipped == SweepReport(skipped=True)
    assert not Recorder.published

    # The holder died without releasing: once the lease expires, sweeping resumes.
    later = utcnow() + timedelta(seconds=61)
    resumed = sweep(sessions, Recorder(), requeue_after=timedelta(seconds=60), now=later)
    assert not resumed.skipped
    assert set(Recorder.published) == refs


def test_a_finished_sweep_frees_the_lease_for_the_next_one(db_url: str) -> None:
    sessions = make_session_factory(make_engine(db_url))

    class Nothing:
        def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
            raise AssertionError("nothing is owed")

    reports = [sweep(sessions, Nothing(), requeue_after=timedelta(seconds=60)) for _ in range(3)]
    assert [r.skipped for r in reports] == [False, False, False]


def start_beat(stack: Stack, n: int) -> subprocess.Popen[bytes]:
    """A real `notifier beat`, with a data dir of its own as on a host of its own."""
    env = {**stack.env, "NOTIFIER_DATA_DIR": str(stack.tmp / f"beat-host-{n}")}
    log = open(stack.tmp / f"beat-{n}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "notifier", "beat", "--loglevel", "INFO"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_real_beats_one_killed_the_other_sweeps_a_lost_alert_out_exactly_once(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(sweep_interval_seconds="1")
    beats = [start_beat(stack, n) for n in range(2)]
    try:
        stack.start_worker()
        url = stack.settings.database_url
        wait_for(lambda: sweeper_heartbeat(url) is not None, 60, "the first scheduled sweep")

        os.killpg(beats[0].pid, signal.SIGKILL)
        beats[0].wait()
        killed_at = utcnow()

        class Crash:
            def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
                raise SystemExit("the API process died here")

        tokens = subscribe_many(stack, "beats", 20, ["israel"])
        real, stack.runtime.publisher = stack.runtime.publisher, Crash()
        with contextlib.suppress(SystemExit):
            stack.post_alert()
        stack.runtime.publisher = real
        with stack.runtime.sessions() as session:
            alert_id = session.scalar(select(Outbox.ref).where(Outbox.dispatched_at.is_(None)))
        assert alert_id is not None

        # No sweeping by the test: only the surviving beat's schedule can deliver it.
        view = stack.wait_for_status(alert_id, timeout=90)
        assert view["status"] == "sent"
        wait_for(
            lambda: (sweeper_heartbeat(url) or killed_at) > killed_at + timedelta(seconds=3),
            30,
            "the sweeper's heartbeat to advance after the kill",
        )
        assert beats[1].poll() is None
        assert Counter(stack.emulator.tokens()) == Counter(tokens)
    finally:
        for beat in beats:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGTERM)
                beat.wait(20)
