"""Helpers for tests that run notifier's real processes (gunicorn, Celery, the emulator, dev)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notifier_process(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m notifier ARGS`` with only the given NOTIFIER_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    clean.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "notifier", *args],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_http(url: str, proc: subprocess.Popen[str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"process exited with {proc.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """SIGTERM, wait, and return what the process printed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


@dataclass(frozen=True)
class DevProcess:
    """``notifier dev`` running as a child process: where it answers, its environment, its log."""

    api: str
    emulator: str
    env: dict[str, str]
    log: Path


@contextmanager
def run_notifier_dev(
    data: Path, *, ready: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[DevProcess]:
    """``python -m notifier dev`` as a newcomer starts it, its data under ``data``.

    Nothing from the environment's ``NOTIFIER_*`` reaches it (only ``extra_env``), so the test
    sees the defaults ``make run`` gives. Yields once ``/livez`` answers and the log shows
    ``ready`` (the banner comes after the API is up); stops its whole process group afterwards,
    since the worker, beat and emulator are its children.
    """
    api_port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_DATA_DIR=str(data / "var"),
        NOTIFIER_PORT=str(api_port),
        NOTIFIER_EMULATOR_PORT=str(emulator_port),
    )
    env.update(extra_env or {})
    log = data / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "notifier", "dev"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_for_http(f"{api}/livez", timeout=60)
        deadline = time.monotonic() + 30
        while ready not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield DevProcess(api, f"http://127.0.0.1:{emulator_port}", env, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
