"""Helpers for tests that run notifier's real processes (gunicorn, Celery, the emulator)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping


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
