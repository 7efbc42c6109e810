"""One asyncio event loop per process, running in a daemon thread, for synchronous callers.

A Celery task is ordinary synchronous code, called many times in the same worker process.
``asyncio.run()`` per call would tear down the connection pool each time (and breaks SDK clients
cached on a closed loop). Instead, coroutines are submitted to one long-lived loop with
``run_coroutine_threadsafe``. After a fork (Celery's prefork pool) the child starts its own loop:
the parent's loop thread does not exist in the child.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """A loop started on first use in each process; ``run`` blocks the caller until done."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # The lock may have been held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        self._loop = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop, started if needed."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and return its result; TimeoutError after ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise
