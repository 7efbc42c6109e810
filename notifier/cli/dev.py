"""``notifier dev`` / ``make run``: the whole service on one machine, embedded defaults.

Starts the API, the FCM emulator, a Celery worker and beat as child processes sharing one
environment, prints where everything is, and stops them all together (Ctrl-C, or when any one
of them dies, so a broken start is never half-running).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from notifier.cli.common import dev_webhook_secret
from notifier.core.settings import Settings

CHILDREN = {
    "emulator": ["fcm-emulator"],
    "api": ["api", "--workers", "2", "--threads", "8"],
    # Threads, not prefork: one process on one machine, nothing to fork-protect on SQLite.
    "worker": ["worker", "--pool", "threads", "--concurrency", "4", "--loglevel", "WARNING"],
    "beat": ["beat", "--loglevel", "WARNING"],
}


def dev_editor_key(settings: Settings) -> str:
    """An editor key for local use, created once and kept under the data dir (0600).

    Production keys are shown once and only their hash is stored; this convenience exists only
    for ``notifier dev``, whose data dir is the developer's own.
    """
    from notifier.core.apikeys import authenticate, create_key
    from notifier.core.db import transaction
    from notifier.runtime import Runtime

    path = settings.data_dir / "dev-editor-key"
    runtime = Runtime.start(settings)
    try:
        with transaction(runtime.sessions) as session:
            if path.is_file():
                key = path.read_text().strip()
                if authenticate(session, key) is not None:
                    return key
            key, _ = create_key(session, "admin", "notifier dev")
    finally:
        runtime.close()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def child_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NOTIFIER_DATA_DIR", str(settings.data_dir.resolve()))
    if not settings.webhook_secrets:
        env["NOTIFIER_WEBHOOK_SECRETS"] = dev_webhook_secret(settings.data_dir)
    env.setdefault("NOTIFIER_LOG_FORMAT", "text")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback URL we built)
                return True
        except OSError:
            time.sleep(0.2)
    return False


def banner(settings: Settings, env: dict[str, str], key: str) -> str:
    api = f"http://{settings.host}:{settings.port}"
    inbox = f"http://127.0.0.1:{settings.emulator_port}/"
    secret = env.get("NOTIFIER_WEBHOOK_SECRETS", "").split(",")[0]
    return "\n".join(
        [
            "",
            "notifier is running (embedded mode: SQLite, filesystem broker, FCM emulator)",
            f"  API             {api}",
            f"  FCM inbox       {inbox}",
            f"  health          {api}/readyz",
            f"  console         {api}/console",
            f"  dashboard       {api}/dashboard",
            f"  demo article    {api}/demo",
            f"  metrics         {api}/metrics",
            f"  data            {settings.data_dir.resolve()}",
            f"  webhook secret  {secret}",
            f"  editor API key  {key}   (role admin: console, dashboard and API)",
            "",
            "Try it as a reader: open the demo article, click 'Get notifications', allow them",
            "(web push goes through the FCM emulator's stand-in: keep a page of the site open):",
            "  .venv/bin/notifier send-test-event --topic israel --headline 'Sirens in the north'",
            "or send from the console (Recent articles > Send as breaking flags a story);",
            "click the notification to count an open: it shows under 'Recent alerts' on the",
            f"dashboard ({api}/dashboard, Opens and open rate).",
            "Or as a phone:",
            f"  curl -s -X POST {api}/v1/subscriptions -H 'Content-Type: application/json' \\",
            '    -d \'{"token": "demo-device-0001", "platform": "android", "topics": ["israel"]}\'',
            f"  open {inbox} to see it arrive;  .venv/bin/notifier status  for the queues",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def run_dev(settings: Settings) -> None:
    env = child_environment(settings)
    key = dev_editor_key(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def stop_all(*_: object) -> None:
        # A second Ctrl-C or SIGTERM must not cut the shutdown short and orphan a child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for name, args in CHILDREN.items():
            command = [sys.executable, "-m", "notifier", *args]
            procs[name] = subprocess.Popen(command, env=env)  # noqa: S603 (our own command)
            if name == "emulator":
                _wait_until_up(
                    f"http://127.0.0.1:{settings.emulator_port}/emulator/stats", procs[name]
                )
            if name == "api" and not _wait_until_up(
                f"http://{settings.host}:{settings.port}/livez", procs[name]
            ):
                print("notifier: the API did not start; see the messages above", file=sys.stderr)
                sys.exit(1)
        print(banner(settings, env, key), flush=True)
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"notifier: {name} exited with {proc.returncode}; stopping", file=sys.stderr
                    )
                    sys.exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()
