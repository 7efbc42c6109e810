"""The sender's event loop serves many calls, several threads, settings, and forked workers."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from notifier.core.settings import load_settings
from notifier.emulator.service_account import ensure_service_account
from notifier.fcm.sender import FcmSender
from tests.sender.factories import PROJECT, make_alert, make_target


def test_repeated_calls_reuse_the_same_loop(sender: FcmSender) -> None:
    for round_ in range(5):
        outcomes = sender.send_batch(
            make_alert(), [make_target(f"t{round_}-{i}") for i in range(20)]
        )
        assert {o.kind for o in outcomes} == {"accepted"}


def test_calls_from_several_threads_at_once(sender: FcmSender) -> None:
    def send(n: int) -> set[str]:
        return {o.kind for o in sender.send_batch(make_alert(), [make_target(f"thread-{n}")])}

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(kinds == {"accepted"} for kinds in pool.map(send, range(16)))


def _send_in_child(sender: FcmSender, queue: Any) -> None:
    outcomes = sender.send_batch(make_alert(), [make_target("forked")])
    queue.put((os.getpid(), outcomes[0].kind))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_worker_gets_its_own_loop(sender: FcmSender) -> None:
    sender.send_batch(make_alert(), [make_target("parent")])  # the parent's loop exists first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_send_in_child, args=(sender, queue))
    child.start()
    pid, kind = queue.get(timeout=20)
    child.join(timeout=20)
    assert pid != os.getpid()
    assert kind == "accepted"


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
