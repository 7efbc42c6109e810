"""The sender's event loop serves many calls, several threads, settings, and forked workers."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from notifier.core.settings import load_settings
from notifier.emulator.service_account import ensure_service_account
from notifier.fcm.sender import _LOOP, FcmSender
from tests.sender.factories import PROJECT, make_alert, make_target


def test_repeated_calls_reuse_the_same_loop_and_session(
    sender: FcmSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch runs on the one loop thread and its pooled session: no per-call setup."""
    seen: list[tuple[asyncio.AbstractEventLoop, threading.Thread, object]] = []
    post_concurrently = sender._post_concurrently

    async def recording(bodies: list[bytes], authorization: str) -> Any:
        replies = await post_concurrently(bodies, authorization)
        seen.append((asyncio.get_running_loop(), threading.current_thread(), sender._session))
        return replies

    monkeypatch.setattr(sender, "_post_concurrently", recording)
    for round_ in range(5):
        outcomes = sender.send_batch(
            make_alert(), [make_target(f"t{round_}-{i}") for i in range(20)]
        )
        assert {o.kind for o in outcomes} == {"accepted"}

    loops, threads, sessions = zip(*seen, strict=True)
    assert len(seen) == 5
    assert all(loop is loops[0] for loop in loops)
    assert all(thread is threads[0] for thread in threads)
    assert threads[0] is not threading.current_thread()
    assert all(session is sessions[0] for session in sessions)
    assert isinstance(sessions[0], aiohttp.ClientSession) and not sessions[0].closed


def test_calls_from_several_threads_at_once(sender: FcmSender) -> None:
    def send(n: int) -> set[str]:
        return {o.kind for o in sender.send_batch(make_alert(), [make_target(f"thread-{n}")])}

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(kinds == {"accepted"} for kinds in pool.map(send, range(16)))


def _send_in_child(
    sender: FcmSender, parent_loop: asyncio.AbstractEventLoop, parent_session: object, queue: Any
) -> None:
    # ``parent_loop`` and ``parent_session`` are the child's copies of the parent's objects.
    outcomes = sender.send_batch(make_alert(), [make_target("forked")])
    queue.put(
        (
            os.getpid(),
            outcomes[0].kind,
            _LOOP.loop() is parent_loop,
            sender._session is parent_session,
        )
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_worker_gets_its_own_loop_and_session(sender: FcmSender) -> None:
    sender.send_batch(make_alert(), [make_target("parent")])  # the parent's loop exists first
    parent_loop, parent_session = _LOOP.loop(), sender._session
    assert parent_session is not None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(
        target=_send_in_child, args=(sender, parent_loop, parent_session, queue)
    )
    child.start()
    pid, kind, same_loop, same_session = queue.get(timeout=20)
    child.join(timeout=20)
    assert pid != os.getpid()
    assert kind == "accepted"
    assert not same_loop, "the child ran on its copy of the parent's loop (no thread runs it)"
    assert not same_session, "the child reused the parent's session (its sockets are shared)"
    assert _LOOP.loop() is parent_loop and sender._session is parent_session  # parent unaffected


def test_sender_from_settings_uses_the_emulator_with_a_generated_account(
    emulator: str, tmp_path: Path
) -> None:
    settings = load_settings(
        environ={}, data_dir=tmp_path, fcm_endpoint=emulator, fcm_project_id=PROJECT
    )
    sender = FcmSender.from_settings(settings, emulator_account=ensure_service_account)
    try:
        (outcome,) = sender.send_batch(make_alert(), [make_target()])
    finally:
        sender.close()
    assert outcome.kind == "accepted"
    assert (tmp_path / "emulator-service-account.json").is_file()


def test_sender_from_settings_without_credentials_or_emulator_account_says_what_is_missing(
    tmp_path: Path,
) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, fcm_project_id=PROJECT)
    with pytest.raises(ValueError, match="emulator_account"):
        FcmSender.from_settings(settings)
    assert not (tmp_path / "emulator-service-account.json").exists()
