"""Run the emulator: one asyncio server per process, no access log (it would cost more than FCM)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web

from notifier.emulator.app import create_emulator_app
from notifier.emulator.state import DEFAULT_CAPACITY

logger = logging.getLogger(__name__)


def run_emulator(
    host: str = "127.0.0.1",
    port: int = 9099,
    project_id: str | None = None,
    capacity: int = DEFAULT_CAPACITY,
    allowed_origins: Iterable[str] = (),
    quota_per_minute: int | None = None,
) -> None:
    """Serve the FCM emulator on ``host:port`` until interrupted (blocking).

    ``project_id`` None serves any project; ``capacity`` bounds the messages kept for inspection;
    ``allowed_origins`` may use the web push stand-in from a browser; ``quota_per_minute``
    refuses sends over that many per project in any 60 s (None or 0: no quota).
    """
    allowed_origins = tuple(allowed_origins)
    app = create_emulator_app(
        project_id=project_id,
        capacity=capacity,
        allowed_origins=allowed_origins,
        quota_per_minute=quota_per_minute,
    )
    base = f"http://{host}:{port}"
    quota = f"{quota_per_minute:,} sends per project in any 60 s" if quota_per_minute else "none"

    def announce(_: str) -> None:
        print(
            f"FCM emulator listening on {base}\n"
            f"  inbox:      {base}/\n"
            f"  token_uri:  {base}/token\n"
            f"  send:       {base}/v1/projects/{project_id or '<project>'}/messages:send\n"
            f"  web push stand-in for: {', '.join(allowed_origins) or 'no page (none allowed)'}\n"
            f"  quota:      {quota}",
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
