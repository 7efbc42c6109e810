"""What the emulator remembers: accepted messages (a bounded ring), counters, faults and quota.

Everything lives in one event loop, so no locks are needed. The message store is a ring so that a
benchmark pushing millions of messages through a long-running emulator cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from notifier.emulator.quota import ProjectQuota

DEFAULT_CAPACITY = 100_000


def account_tag(account: str) -> str:
    """A short tag of a service account's email, carried in its access tokens so that revoking
    the account (a fault) can refuse the tokens it already holds."""
    return hashlib.sha256(account.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Faults:
    """Failures to inject into ``messages:send``: rates in [0, 1], a Retry-After, a delay."""

    unavailable_rate: float = 0.0
    internal_rate: float = 0.0
    quota_rate: float = 0.0
    retry_after_seconds: int | None = None
    latency_ms: float = 0.0

    @classmethod
    def from_json(cls, body: object) -> Faults:
        """Parse the ``POST /emulator/faults`` body; ``{}`` means no faults at all."""
        if not isinstance(body, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        rates = {}
        for name in ("unavailable_rate", "internal_rate", "quota_rate"):
            value = body.get(name, 0.0)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
            rates[name] = float(value)
        if sum(rates.values()) > 1:
            raise ValueError("the fault rates must add up to at most 1")
        retry_after = body.get("retry_after_seconds")
        if retry_after is not None and (
            not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
        ):
            raise ValueError("retry_after_seconds must be a non-negative integer")
        latency = body.get("latency_ms", 0.0)
        if not isinstance(latency, int | float) or isinstance(latency, bool) or latency < 0:
            raise ValueError("latency_ms must be a non-negative number")
        return cls(**rates, retry_after_seconds=retry_after, latency_ms=float(latency))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def pick(self) -> str | None:
        """The FCM error code to answer with this time, or None to proceed normally."""
        if not (self.unavailable_rate or self.internal_rate or self.quota_rate):
            return None
        roll = random.random()
        for code, rate in (
            ("UNAVAILABLE", self.unavailable_rate),
            ("INTERNAL", self.internal_rate),
            ("QUOTA_EXCEEDED", self.quota_rate),
        ):
            if roll < rate:
                return code
            roll -= rate
        return None


@dataclass(slots=True)
class ReceivedMessage:
    """One accepted message as a phone would get it, with where and when it arrived."""

    seq: int
    name: str
    target_kind: str
    target: str
    platform: str
    received_at: float
    message: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "name": self.name,
            self.target_kind: self.target,
            "platform": self.platform,
            "received_at": self.received_at,
            "message": self.message,
        }


@dataclass
class EmulatorState:
    """The emulator's memory; one instance per running app."""

    capacity: int = DEFAULT_CAPACITY
    faults: Faults = field(default_factory=Faults)
    stats: Counter[str] = field(default_factory=Counter)
    quota: ProjectQuota = field(default_factory=ProjectQuota)
    # Outcomes per project (several apps, each its own project), beside the totals in ``stats``.
    project_stats: dict[str, Counter[str]] = field(default_factory=dict)
    # Service accounts whose credentials were revoked (a fault), and their access-token tags.
    revoked_accounts: frozenset[str] = frozenset()
    revoked_tags: frozenset[str] = frozenset()
    _messages: deque[ReceivedMessage] = field(init=False)
    _seq: int = 0

    def __post_init__(self) -> None:
        self._messages = deque(maxlen=self.capacity)

    def count(self, project: str, outcome: str) -> None:
        """Count one ``messages:send`` outcome, in the totals and in the project's own."""
        self.stats[outcome] += 1
        counter = self.project_stats.get(project)
        if counter is None:
            counter = self.project_stats[project] = Counter()
        counter[outcome] += 1

    def revoke(self, accounts: list[str]) -> None:
        """Revoke exactly these service accounts' credentials (an empty list restores all)."""
        self.revoked_accounts = frozenset(accounts)
        self.revoked_tags = frozenset(account_tag(a) for a in accounts)

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def stored(self) -> int:
        return len(self._messages)

    def record(
        self, name: str, target_kind: str, target: str, platform: str, message: dict[str, Any]
    ) -> ReceivedMessage:
        """Remember an accepted message; the oldest one falls out once the ring is full."""
        self._seq += 1
        item = ReceivedMessage(self._seq, name, target_kind, target, platform, time.time(), message)
        self._messages.append(item)
        return item

    def since(self, seq: int, limit: int) -> list[ReceivedMessage]:
        """Up to ``limit`` messages newer than ``seq``, oldest first.

        Walks from the newest end, so a live poll costs only what it returns.
        """
        newer: list[ReceivedMessage] = []
        for item in reversed(self._messages):
            if item.seq <= seq:
                break
            newer.append(item)
        newer.reverse()
        return newer[:limit]

    def newest(self, limit: int) -> list[ReceivedMessage]:
        """The ``limit`` most recent messages, oldest first."""
        if limit <= 0:
            return []
        count = min(limit, len(self._messages))
        return list(self._messages)[-count:]

    def __iter__(self) -> Iterator[ReceivedMessage]:
        return iter(self._messages)

    def clear_messages(self) -> None:
        """Forget the messages (the counters and the sequence keep going, so pollers stay sane)."""
        self._messages.clear()

    def stats_json(self) -> dict[str, Any]:
        return {
            "outcomes": dict(self.stats),
            "stored": len(self._messages),
            "capacity": self.capacity,
            "last_seq": self._seq,
            "faults": self.faults.to_json(),
            "quota": self.quota.to_json(),
            "projects": {p: dict(c) for p, c in sorted(self.project_stats.items())},
            "revoked_accounts": sorted(self.revoked_accounts),
        }


# Typed key under which the aiohttp application keeps its state.
STATE_KEY = web.AppKey("state", EmulatorState)
