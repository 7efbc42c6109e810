"""Run the emulator: one asyncio server per process, no access log (it would cost more than FCM)."""

from __future__ import annotations

import logging

from aiohttp import web

from notifier.emulator.app import create_emulator_app
from notifier.emulator.state import DEFAULT_CAPACITY

logger = logging.getLogger(__name__)


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 9099,
    project_id: str | None = None,
    capacity: int = DEFAULT_CAPACITY,
) -> None:
    """Serve the FCM emulator on ``host:port`` until interrupted (blocking).

    ``project_id`` None serves any project; ``capacity`` bounds the messages kept for inspection.
    """
    app = create_emulator_app(project_id=project_id, capacity=capacity)
    base = f"http://{host}:{port}"

    def announce(_: str) -> None:
        print(
            f"FCM emulator listening on {base}\n"
            f"  inbox:      {base}/\n"
            f"  token_uri:  {base}/token\n"
            f"  send:       {base}/v1/projects/{project_id or '<project>'}/messages:send",
            flush=True,
        )

    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=announce,
        handle_signals=True,
        # Keep connections long: senders hold a pool of hundreds and reuse them batch after batch.
        keepalive_timeout=300,
        backlog=1024,
    )
