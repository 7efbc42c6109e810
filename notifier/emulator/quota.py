"""FCM's send quota as the emulator enforces it: at most N sends per project in any 60 seconds.

FCM counts a project's sends over a rolling minute (its minutes are not aligned to the clock), so
a sender that spends a full minute's quota in the last second of one clock minute and again in
the first second of the next is refused. The emulator does the same: each project keeps the
sends it admitted in the last 60 s as runs of ``[millisecond, count]`` in a deque, so a send
costs an append (or an increment) and drops only the runs that just left the window. At 10,000
sends/s that is at most 60,000 runs per project however large the quota, and no scan per request.

Times are whole milliseconds of a monotonic clock. A send in millisecond ``t`` stays counted
until the clock reaches ``t + 60,001``: a millisecond longer than the exact window, never
shorter, so the emulator errs on FCM's side.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW_MS = 60_000


@dataclass(slots=True)
class _ProjectWindow:
    """One project's admitted sends in the current window, and its refusals since the reset."""

    runs: deque[list[int]] = field(default_factory=deque)
    in_window: int = 0
    refused: int = 0

    def expire(self, now_ms: int) -> None:
        runs = self.runs
        oldest_kept = now_ms - WINDOW_MS
        while runs and runs[0][0] < oldest_kept:
            self.in_window -= runs.popleft()[1]


class ProjectQuota:
    """Per-project rolling-window quota; ``per_minute`` None means no quota at all.

    ``per_minute`` applies to every project; :meth:`set_project` gives one project a quota of
    its own (several apps, each its own Firebase project with its own quota).

    ``clock`` returns seconds (monotonic); tests pass a fake one to move time by hand.
    """

    def __init__(
        self, per_minute: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._windows: dict[str, _ProjectWindow] = {}
        self._own: dict[str, int | None] = {}
        self.per_minute = per_minute or None

    def reset(self, per_minute: int | None) -> None:
        """Set a new quota (None or 0: none) for every project and forget every project's
        window, refusals and own quota."""
        self.per_minute = per_minute or None
        self._windows.clear()
        self._own.clear()

    def set_project(self, project: str, per_minute: int | None) -> None:
        """Give ``project`` its own quota (None or 0: none) and forget its window and refusals;
        the other projects are untouched."""
        self._own[project] = per_minute or None
        self._windows.pop(project, None)

    def limit_of(self, project: str) -> int | None:
        return self._own.get(project, self.per_minute)

    def admit(self, project: str) -> int | None:
        """Count one send for ``project``: None if admitted, else the Retry-After in seconds.

        A refused send is not counted against the window (a client told to wait is not charged
        for asking), and the Retry-After says when the oldest counted send leaves the window,
        that is when a slot frees: at least one second, as the header has whole seconds.
        """
        limit = self.limit_of(project)
        if limit is None:
            return None
        now_ms = int(self._clock() * 1000)
        window = self._windows.get(project)
        if window is None:
            window = self._windows[project] = _ProjectWindow()
        window.expire(now_ms)
        if window.in_window >= limit:
            window.refused += 1
            frees_at_ms = window.runs[0][0] + WINDOW_MS + 1
            return max(1, math.ceil((frees_at_ms - now_ms) / 1000))
        window.in_window += 1
        runs = window.runs
        if runs and runs[-1][0] == now_ms:
            runs[-1][1] += 1
        else:
            runs.append([now_ms, 1])
        return None

    def to_json(self) -> dict[str, Any]:
        """``{"per_minute", "window_seconds", "projects": {id: {"in_window", "refused"}}}``; a
        project with a quota of its own also shows it as ``per_minute``."""
        now_ms = int(self._clock() * 1000)
        projects: dict[str, dict[str, int | None]] = {}
        for project in sorted(set(self._own) | set(self._windows)):
            window = self._windows.get(project)
            if window is not None:
                window.expire(now_ms)
            entry: dict[str, int | None] = {
                "in_window": window.in_window if window else 0,
                "refused": window.refused if window else 0,
            }
            if project in self._own:
                entry["per_minute"] = self._own[project]
            projects[project] = entry
        return {
            "per_minute": self.per_minute,
            "window_seconds": WINDOW_MS // 1000,
            "projects": projects,
        }


def parse_quota_body(body: object) -> int | None:
    """The ``POST /emulator/quota`` body ``{"per_minute": N | 0 | null}`` -> N or None.

    Raises ValueError (with a message for the client) for anything else.
    """
    return parse_project_quota_body(body)[0]


def parse_project_quota_body(body: object) -> tuple[int | None, str | None]:
    """``{"per_minute": N | 0 | null, "project"?: id}`` -> (N or None, the project or None).

    Without ``project`` the quota is every project's; with it, that project's own.
    """
    if (
        not isinstance(body, dict)
        or "per_minute" not in body
        or not set(body) <= {"per_minute", "project"}
    ):
        raise ValueError(
            'expected {"per_minute": N, "project"?: id}, N a non-negative integer or null'
        )
    project = body.get("project")
    if project is not None and (not isinstance(project, str) or not project):
        raise ValueError("project must be a non-empty string")
    return _per_minute(body["per_minute"]), project


def _per_minute(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**12:
        raise ValueError("per_minute must be a non-negative integer (0 or null: no quota)")
    return value or None
