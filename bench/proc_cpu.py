"""CPU seconds used by groups of processes over a window, read from /proc (for bench/fanout.py).

CPU time, unlike wall clock, does not move when other work shares the machine, so figures per
delivered device can be compared between runs on a busy box.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# A process (all its threads) by its pid, or one thread of it by (pid, thread id).
Source = int | tuple[int, int]


def cpu_seconds(pid: Source) -> float | None:
    """utime + stime of a process (all its threads) or of one thread, from /proc; None once gone."""
    path = f"/proc/{pid}/stat" if isinstance(pid, int) else f"/proc/{pid[0]}/task/{pid[1]}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (children of any of its threads)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in children.read_text().split())
            except OSError:
                continue
    return found


def threads(pid: int) -> list[tuple[int, int]]:
    """Every thread of a process, as (pid, thread id); the main thread's id is the pid."""
    try:
        return [(pid, int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


def pids_named(name: str) -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                pids.append(int(comm.parent.name))
        except OSError:
            continue
    return pids


class CpuSampler:
    """CPU seconds per group of processes over a window, read from /proc (not wall clock).

    Sampled every ``interval`` seconds in a thread, keeping the last value seen per pid, so a
    process that exits during the window (a PostgreSQL backend, a prefork child) keeps the CPU it
    used up to its last sample. A pid first seen after the window opened counts from zero.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[Source]]], interval: float = 0.5):
        self.groups = groups
        self.interval = interval
        self.base: dict[str, dict[Source, float]] = {g: {} for g in groups}
        self.last: dict[str, dict[Source, float]] = {g: {} for g in groups}
        self._opened = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def sample(self) -> None:
        for group, pids_of in self.groups.items():
            try:
                pids = list(pids_of())
            except Exception:  # a lookup failing once (a process racing away) skips a sample
                continue
            for pid in pids:
                seconds = cpu_seconds(pid)
                if seconds is None:
                    continue
                self.last[group][pid] = seconds
                if not self._opened:
                    self.base[group][pid] = seconds

    def open(self) -> None:
        """Start the window: what every process has used so far is not counted."""
        self.sample()
        self._opened = True
        self._thread.start()

    def close(self) -> dict[str, float]:
        """End the window; CPU seconds per group."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return {
            group: sum(v - self.base[group].get(pid, 0.0) for pid, v in self.last[group].items())
            for group in self.groups
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
