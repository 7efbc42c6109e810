"""A stand-in for the FCM sender behind the ``Sender`` protocol, and a clock the tests move.

Only the HTTP seam is replaced (as Sygnal tests its pushkins): the batch sender, the database and
the recording are the real ones. Failures can be given as FCM error codes, which go through the
real classification rules (``notifier.fcm.outcomes.classify``), so a scripted QUOTA_EXCEEDED gets
the same minimum wait as one from FCM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notifier.fcm.outcomes import classify
from notifier.fcm.types import Accepted, Fatal, Outcome, Prune, PushAlert, Retry, Target

Reply = Callable[[int], Outcome]
"""What FCM answers for one device: a function of the device id to its typed outcome."""


def accept() -> Reply:
    return lambda device_id: Accepted(device_id, f"projects/test/messages/{device_id}")


def prune(reason: str = "UNREGISTERED") -> Reply:
    return lambda device_id: Prune(device_id, reason)


def fatal(reason: str = "THIRD_PARTY_AUTH_ERROR") -> Reply:
    return lambda device_id: Fatal(device_id, reason)


def retry(reason: str = "UNAVAILABLE", after: float | None = None) -> Reply:
    return lambda device_id: Retry(device_id, reason, after)


def fcm_error(code: str, *, retry_after: float | None = None) -> Reply:
    """FCM's error ``code`` turned into an outcome by the production rules."""
    return lambda device_id: classify(device_id, code, retry_after=retry_after)


@dataclass
class FakeSender:
    """Answers each token as scripted and records every request it was asked to send.

    ``script`` maps a token to one reply, or to a list of replies used on successive sends of that
    token (the last one repeats); unscripted tokens are accepted. ``during_send`` runs once, inside
    the first send, i.e. while the batch is leased and in flight: tests use it to cancel the
    alert, to let another worker try the batch, or to die (by raising).
    """

    script: Mapping[str, Reply | Sequence[Reply]] = field(default_factory=dict)
    during_send: Callable[[], None] | None = None
    requests: list[tuple[PushAlert, list[Target]]] = field(default_factory=list)
    _sends_per_token: dict[str, int] = field(default_factory=dict)

    def send_batch(
        self,
        alert: PushAlert,
        targets: Sequence[Target],
        *,
        latencies: list[float] | None = None,
    ) -> list[Outcome]:
        self.requests.append((alert, list(targets)))
        hook, self.during_send = self.during_send, None
        if hook is not None:
            hook()
        if latencies is not None:
            latencies.extend(0.01 for _ in targets)
        return [self._answer(target) for target in targets]

    def _answer(self, target: Target) -> Outcome:
        scripted = self.script.get(target.token, accept())
        n = self._sends_per_token.get(target.token, 0)
        self._sends_per_token[target.token] = n + 1
        if callable(scripted):
            return scripted(target.device_id)
        return scripted[min(n, len(scripted) - 1)](target.device_id)

    @property
    def sent_tokens(self) -> list[str]:
        """Every token in every request, in order, duplicates included."""
        return [t.token for _, targets in self.requests for t in targets]

    @property
    def chunk_sizes(self) -> list[int]:
        return [len(targets) for _, targets in self.requests]


class Clock:
    """A UTC clock that only moves when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
