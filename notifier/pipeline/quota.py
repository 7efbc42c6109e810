"""The FCM project quota, shared by every worker: a token bucket in Redis.

Celery's ``rate_limit`` is per worker process, so N workers would send N times the quota. Here
every sender reserves tokens from one bucket in Redis (a Lua script, so the read-modify-write is
atomic and uses Redis's clock, not the workers'). A reservation may drive the bucket negative;
the caller then waits until its tokens would have accrued, which keeps the long-run rate at the
quota and serves callers in arrival order.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

_RESERVE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate / 1000) - wanted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens * 1000 / rate)
"""


class SendLimiter(Protocol):
    """Reserve ``n`` sends; returns the seconds the caller waited for them."""

    max_chunk: int

    def acquire(self, n: int) -> float: ...


class RedisTokenBucket:
    """The shared bucket. ``per_minute`` is the FCM project quota (600,000 by default)."""

    def __init__(self, client: redis.Redis, per_minute: int, key: str = "notifier:fcm-quota"):
        self.client = client
        self.rate = per_minute / 60.0
        # One second of burst; a reservation never asks for more than that at once.
        self.capacity = max(1.0, self.rate)
        self.max_chunk = max(1, int(self.capacity))
        self.key = key
        self._script = client.register_script(_RESERVE)

    def acquire(self, n: int) -> float:
        wait_ms = int(self._script(keys=[self.key], args=[self.rate, self.capacity, n]))
        if wait_ms > 0:
            time.sleep(wait_ms / 1000)
        return wait_ms / 1000


class LocalTokenBucket:
    """The same bucket in process memory, for embedded mode (one machine, no Redis)."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.max_chunk = max(1, int(self.capacity))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, n: int) -> float:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate) - n
            self._stamp = now
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait
