"""The FCM project quota, shared by every worker: a token bucket in Redis.

Celery's ``rate_limit`` is per worker process, so N workers would send N times the quota. Here
every sender reserves tokens from one bucket in Redis (a Lua script, so the read-modify-write is
atomic and uses Redis's clock, not the workers'). A reservation may drive the bucket negative;
the caller then waits until its tokens would have accrued, which keeps the long-run rate at the
quota and serves callers in arrival order. A worker that starts in the middle of a fan-out takes
from the same bucket, so it brings no burst of its own.

The bucket's shape (:func:`bucket_shape`) is chosen for FCM's rolling minute, not only for its
average rate: a 429 QUOTA_EXCEEDED costs at least a minute of backoff for every sender.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import redis

# FCM counts a project's sends over any 60 s, not per clock minute.
FCM_WINDOW_SECONDS = 60.0
# The bucket's burst, as a share of the per-minute quota: enough for a batch of 500 at FCM's
# default quota (3,000 of 600,000), small enough to leave most of the minute to the steady rate.
BURST_FRACTION = 0.005
# How long after its tokens are granted a send may still reach FCM: the time to send a chunk of
# up to ``capacity`` messages on a busy machine, plus clock and network skew.
SEND_DELAY_ALLOWANCE_SECONDS = 2.0
# With several apps, the longest a batch waits for its app's tokens inside its task. A longer
# wait would hold a worker slot that another app's batch could use: the batch is deferred
# instead (re-published for when its tokens will be there). Small, so a wait it does allow
# costs the other apps little; not zero, so a bucket merely refilling is waited for in place.
MAX_IN_TASK_WAIT_SECONDS = 2.0


class BucketShape(NamedTuple):
    """A token bucket: ``capacity`` tokens at most (the burst), refilled at ``rate`` per second."""

    capacity: float
    rate: float


def bucket_shape(per_minute: int) -> BucketShape:
    """The bucket that keeps every rolling 60 s window at or under ``per_minute`` sends.

    A token bucket grants at most ``capacity + rate * T`` tokens in any interval of T seconds
    (reservations that wait for their tokens included). Sends granted in an interval reach FCM
    up to D seconds later (D: :data:`SEND_DELAY_ALLOWANCE_SECONDS`), so the sends FCM counts in
    any 60 s were granted within 60 + D s: at most ``capacity + rate * (60 + D)``. Taking

        capacity = max(1, floor(per_minute * BURST_FRACTION))
        rate     = (per_minute - capacity) / (60 + D)

    makes that exactly ``per_minute``. The naive shape (one second of burst, then per_minute/60
    a second) grants ``per_minute + per_minute / 60`` in a minute when it starts full, and its
    first 429 stops the whole fleet for a minute. The price is the average rate: 96.3% of the
    quota with these constants, which still finishes a fan-out sooner than a single 429 would.
    """
    capacity = float(max(1, math.floor(per_minute * BURST_FRACTION)))
    # A quota of one send a minute still gets a (tiny) positive rate, never a division by zero.
    rate = max(per_minute - capacity, 1.0) / (FCM_WINDOW_SECONDS + SEND_DELAY_ALLOWANCE_SECONDS)
    return BucketShape(capacity, rate)


_RESERVE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate / 1000) - wanted
local wait = 0
if tokens < 0 then wait = math.ceil(-tokens * 1000 / rate) end
if ARGV[5] == 'peek' then return wait end
if max_wait >= 0 and wait > max_wait then return -wait end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return wait
"""


@dataclass(frozen=True, slots=True)
class Deferred:
    """A reservation not made: its tokens would take ``wait`` seconds, past the caller's bound.

    Nothing was taken from the bucket, so the quota's rate is not lowered by asking.
    """

    wait: float


class SendLimiter(Protocol):
    """Reserve ``n`` sends: ``acquire`` returns the seconds the caller waited for them.

    ``acquire_within`` bounds the wait by ``max_wait`` seconds: past it the bucket is left
    untouched, nothing is waited for, and :class:`Deferred` says how long the tokens would take.
    """

    max_chunk: int

    def acquire(self, n: int) -> float: ...

    def acquire_within(self, n: int, max_wait: float) -> float | Deferred: ...

    def peek(self, n: int) -> float:
        """The seconds ``n`` tokens would take now, taking nothing."""
        ...


class RedisTokenBucket:
    """The shared bucket. ``per_minute`` is the FCM project quota (600,000 by default)."""

    def __init__(self, client: redis.Redis, per_minute: int, key: str = "notifier:fcm-quota"):
        self.client = client
        self.capacity, self.rate = bucket_shape(per_minute)
        # A reservation never asks for more than the burst at once.
        self.max_chunk = max(1, int(self.capacity))
        self.key = key
        self._script = client.register_script(_RESERVE)

    def acquire(self, n: int) -> float:
        return self._wait_for(self._run(n, -1))

    def reserve(self, n: int) -> float:
        """Take ``n`` tokens now, into debt if need be, without waiting: the seconds until they
        are the caller's (as :meth:`LocalTokenBucket.reserve`; benchmarks and tests use it to
        stand for sends made elsewhere)."""
        return self._run(n, -1) / 1000

    def peek(self, n: int) -> float:
        return (
            int(self._script(keys=[self.key], args=[self.rate, self.capacity, n, -1, "peek"]))
            / 1000
        )

    def acquire_within(self, n: int, max_wait: float) -> float | Deferred:
        wait_ms = self._run(n, max(0, math.floor(max_wait * 1000)))
        if wait_ms < 0:  # the script wrote nothing
            return Deferred(-wait_ms / 1000)
        return self._wait_for(wait_ms)

    def _run(self, n: int, max_wait_ms: int) -> int:
        """The script's answer: the wait reserved in ms, or minus the wait it declined (only
        with a bound: ``max_wait_ms`` -1 reserves whatever the wait)."""
        return int(
            self._script(keys=[self.key], args=[self.rate, self.capacity, n, max_wait_ms, "take"])
        )

    @staticmethod
    def _wait_for(wait_ms: int) -> float:
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        return wait_ms / 1000


def quota_key(prefix: str, app_id: str) -> str:
    """The Redis key of one app's bucket. The ``default`` app keeps the key used before apps
    existed, so workers of the previous release and this one share one bucket while deploying."""
    base = f"{prefix}notifier:fcm-quota"
    return base if app_id == "default" else f"{base}:{app_id}"


class PerAppLimiters:
    """One bucket per app (each Firebase project has its own quota), made on first use.

    ``make`` builds the bucket of an app id (with its ``quota_per_minute``); waiting for one
    app's tokens never delays a batch of another app, whose bucket is separate.
    """

    def __init__(self, make: Callable[[str], SendLimiter]) -> None:
        self._make = make
        self._limiters: dict[str, SendLimiter] = {}
        self._lock = threading.Lock()

    def for_app(self, app_id: str) -> SendLimiter:
        with self._lock:
            limiter = self._limiters.get(app_id)
            if limiter is None:
                limiter = self._limiters[app_id] = self._make(app_id)
            return limiter


class LocalTokenBucket:
    """The same bucket in process memory, for embedded mode (one machine, no Redis).

    Each process has its own, starting full: one worker process is what embedded mode runs.
    ``clock`` and ``sleep`` are for tests that simulate time.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity, self.rate = bucket_shape(per_minute)
        self.max_chunk = max(1, int(self.capacity))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, n: int) -> float:
        """Take ``n`` tokens now, into debt if need be: the seconds until they are the caller's."""
        return self._take(n, None)[0]

    def peek(self, n: int) -> float:
        return self._take(n, None, take=False)[0]

    def _take(self, n: int, max_wait: float | None, *, take: bool = True) -> tuple[float, bool]:
        """The wait for ``n`` tokens, and whether they were taken (``take``, within the bound)."""
        with self._lock:
            now = self._clock()
            tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate) - n
            wait = -tokens / self.rate if tokens < 0 else 0.0
            if not take or (max_wait is not None and wait > max_wait):
                return wait, False
            self._tokens, self._stamp = tokens, now
            return wait, True

    def acquire(self, n: int) -> float:
        wait = self.reserve(n)
        if wait > 0:
            self._sleep(wait)
        return wait

    def acquire_within(self, n: int, max_wait: float) -> float | Deferred:
        wait, taken = self._take(n, max_wait)
        if not taken:
            return Deferred(wait)
        if wait > 0:
            self._sleep(wait)
        return wait
