"""A PostgreSQL cluster of a test's own, on a free port, that the test may stop and start.

The shared PostgreSQL on 5432 serves every other test on the machine, so tests that take the
database away (readiness, fault 10) start one of these instead.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import service_unavailable
from tests.support import free_port


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class ThrowawayPostgres:
    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        ctl = _pg_bin("pg_ctl")
        assert ctl
        subprocess.run(
            [*self.run_as, ctl, "-D", str(self.data), "-w", *args], check=True, capture_output=True
        )

    def init(self) -> None:
        initdb = _pg_bin("initdb")
        if initdb is None:
            service_unavailable("PostgreSQL server binaries", "initdb not found")
        if self.run_as:
            shutil.chown(self.data.parent, "postgres")
        subprocess.run(
            [
                *self.run_as,
                initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.data / "log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")


@contextlib.contextmanager
def running_throwaway_postgres(prefix: str) -> Iterator[ThrowawayPostgres]:
    """Init and start a cluster, yield it, then stop it (if the test left it up) and remove it."""
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = ThrowawayPostgres(root)
    try:
        server.init()
        server.start()
        yield server
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test already
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
