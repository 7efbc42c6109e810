"""Start the emulator in a child process and wait until it answers: for tests and benchmarks.

A separate process (rather than a thread) keeps the emulator's CPU off the measured process and
exercises the same entry point a developer runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_READY_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A TCP port on loopback that nothing is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(base_url: str, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
    """Block until ``GET /emulator/stats`` answers, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            # base_url is the http:// address of the emulator we started, never user input.
            url = f"{base_url}/emulator/stats"
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the FCM emulator at {base_url} did not start")
        time.sleep(0.05)


def start_emulator_process(
    port: int | None = None,
    env: dict[str, str] | None = None,
    *,
    project_id: str | None = None,
    capacity: int | None = None,
    allowed_origins: tuple[str, ...] = (),
    quota_per_minute: int | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m notifier.emulator`` and return the process and its base URL once ready.

    ``port`` None picks a free one; ``allowed_origins`` may use the web push stand-in;
    ``quota_per_minute`` enforces FCM's per-project quota. The caller stops it with
    :func:`stop_emulator_process`.
    """
    port = port or free_port()
    args = [sys.executable, "-m", "notifier.emulator", "--port", str(port)]
    if project_id:
        args += ["--project", project_id]
    if capacity:
        args += ["--capacity", str(capacity)]
    for origin in allowed_origins:
        args += ["--allow-origin", origin]
    if quota_per_minute:
        args += ["--quota-per-minute", str(quota_per_minute)]
    child_env = dict(os.environ if env is None else env)
    # Run from the checkout when notifier is not installed, as under a bare pytest run.
    root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, child_env.get("PYTHONPATH")]))
    proc = subprocess.Popen(args, env=child_env, stdout=subprocess.DEVNULL)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"the FCM emulator exited with {proc.returncode}")
    return proc, base_url


def stop_emulator_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop an emulator started by :func:`start_emulator_process`."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
