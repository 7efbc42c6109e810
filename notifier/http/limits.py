"""Per-client rate limits on the public endpoints, counted across every API process.

With Redis configured the counters live there. Without it (the embedded default) they live in a
small SQLite file under ``NOTIFIER_DATA_DIR``, shared by all gunicorn workers of the machine.
Per-process memory counters would let N workers pass N times the limit, and make
``X-RateLimit-Remaining`` jump as requests land on different workers; serving embedded mode
with a single worker would keep the counts right but give up every core but one. A shared file
keeps both: one indexed upsert per limited request, well under a millisecond.

Besides the per-address limits on whole routes, two limits are counted per key in the same store:

- ``subscription_token``: subscription writes per device token (hashed: no token in clear in
  Redis keys or the SQLite file). Carrier-grade NAT puts thousands of readers behind one IPv4
  address, so the per-address ``subscriptions`` ceiling is high and the token limit is what
  slows one client hammering.
- ``auth_failures``: wrong API keys per address. Past the limit a wrong key gets 429 with
  Retry-After instead of 401; a valid key is never refused by this counter (see ``auth.py``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, WindowStats, parse
from limits.storage import RedisStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import NoScriptError, ResponseError

from notifier.core.settings import Settings
from notifier.http.problems import Problem

log = logging.getLogger(__name__)

# endpoint -> scope in NOTIFIER_RATE_LIMITS
LIMITED_ENDPOINTS = {
    "subscriptions.subscribe": "subscriptions",
    "subscriptions.unsubscribe": "subscriptions",
    "subscriptions.rotate_token": "subscriptions",
    "subscriptions.lookup": "lookup",
    "events.receive": "events",
    "widget.open_alert": "opens",
}

# Routes whose views count the per-token limit (``limit_device_token``): their route limit is
# counted with it, in one round trip to the store.
TOKEN_LIMITED_ENDPOINTS = frozenset(
    {"subscriptions.subscribe", "subscriptions.unsubscribe", "subscriptions.rotate_token"}
)

SQLITE_SCHEME = "notifier-sqlite"
_PURGE_EVERY = 1000  # increments per connection between sweeps of expired windows
# Statuses whose Retry-After asks the client to come back later (RFC 6585 4, RFC 9110 15.6.4).
_RETRY_STATUSES = frozenset({429, 503})


def storage_uri(settings: Settings) -> str:
    """Redis when configured, else the machine-wide SQLite file in the data dir."""
    if settings.redis_url:
        return settings.redis_url
    return f"{SQLITE_SCHEME}://{(settings.data_dir / 'rate-limits.db').resolve()}"


def init_limiter(app: Flask, settings: Settings, endpoints: dict[str, str]) -> RouteLimits:
    """Attach limits to ``endpoints`` (view name -> scope). Call after blueprints are registered.

    If the counter store is briefly unreachable, serving without limits beats failing every
    reader.
    """
    storage = storage_from_string(
        storage_uri(settings),
        **({"socket_connect_timeout": 1, "socket_timeout": 1} if settings.redis_url else {}),
    )
    if not isinstance(storage, Storage):  # an async store: limits' aio schemes are not for WSGI
        raise TypeError(f"rate limit storage {type(storage).__name__} is not a sync store")
    # One counter per client and window (one Redis script or SQLite upsert); a moving window
    # costs a sorted list per client and two scripts per request, for a precision public
    # endpoints don't need.
    strategy = CountingFixedWindow(storage)
    namespace = f"{settings.redis_key_prefix}notifier-limits"
    routes = RouteLimits(
        strategy,
        namespace,
        {endpoint: parse(settings.rate_limits[scope]) for endpoint, scope in endpoints.items()},
    )
    routes.init_app(app)
    app.extensions[_EXTENSION] = KeyedLimits(
        subscription_token=KeyedLimit(
            strategy, settings.rate_limits["subscription_token"], namespace, "subscription_token"
        ),
        auth_failures=KeyedLimit(
            strategy, settings.rate_limits["auth_failures"], namespace, "auth_failures"
        ),
    )
    return routes


_EXTENSION = "notifier.keyed_limits"
ROUTE_LIMITS = "notifier.route_limits"
# Where a limited request keeps its route limit's window for the response headers.
_WINDOW = "notifier_rate_window"
# Where a token-limited request keeps its route limit until the view counts both together.
_PENDING = "notifier_rate_pending"


class RouteLimits:
    """Per-address fixed-window limits on whole routes, with the ``X-RateLimit-*`` headers.

    This does what Flask-Limiter did for these routes, for a fraction of its CPU (issue 12:
    its per-request filtering, limit resolution and context objects were about a fifth of a
    subscribe's server CPU): each limited view is wrapped, so unlimited routes cost nothing,
    and the wrapper makes one counter hit that also returns the window's stats. The outside
    behaviour is Flask-Limiter's: counters keyed by prefix, address and endpoint (the same
    keys, so a rolling upgrade keeps its counts); a refused request gets 429 problem+json whose
    detail names the limit (``"6000 per 1 minute"``); every answer of a limited route carries
    ``X-RateLimit-Limit/Remaining/Reset``, and a 429 or 503 a ``Retry-After`` that is the later
    of its own and the window's reset; a store that cannot be reached serves without limits.

    On the subscription writes (``TOKEN_LIMITED_ENDPOINTS``) the route limit is counted together
    with the per-token limit, when the view has read the token (:func:`limit_device_token`):
    one round trip to the store instead of two. A view that fails before (a body that is not
    valid) still has its route limit counted, and a request over the route limit still gets the
    route's 429 whatever its body, and is not counted against its token: as when the route
    limit was counted before the view.
    """

    def __init__(
        self,
        strategy: CountingFixedWindow,
        namespace: str,
        items: dict[str, RateLimitItem],
    ) -> None:
        self.strategy = strategy
        self._namespace = namespace
        self._items = items

    def init_app(self, app: Flask) -> None:
        """Wrap the limited views and add the headers hook (call after the blueprints)."""
        for endpoint, item in self._items.items():
            view = app.view_functions.get(endpoint)
            if view is not None:
                app.view_functions[endpoint] = self._limited(view, endpoint, item)
        app.after_request(self._headers)
        app.extensions[ROUTE_LIMITS] = self

    def _limited(self, view: Callable[..., Any], endpoint: str, item: RateLimitItem) -> Any:
        if endpoint in TOKEN_LIMITED_ENDPOINTS:
            return self._limited_with_token(view, endpoint, item)

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            self.check(endpoint, item)
            return view(*args, **kwargs)

        return limited

    def _limited_with_token(
        self, view: Callable[..., Any], endpoint: str, item: RateLimitItem
    ) -> Any:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            setattr(g, _PENDING, (endpoint, item))
            try:
                answer = view(*args, **kwargs)
            except Exception:
                if g.pop(_PENDING, None) is not None:  # failed before counting: count it now
                    self.check(endpoint, item)
                raise
            if g.pop(_PENDING, None) is not None:
                self.check(endpoint, item)
            return answer

        return limited

    def check_with_token(self, keyed: KeyedLimit, key: str) -> int | None:
        """Count the pending route limit and ``keyed`` for ``key`` in one round trip.

        429 past the route limit (its token not counted); else None within ``keyed``, or the
        seconds to wait past it. Without a pending route limit, only ``keyed`` is counted.
        """
        pending: tuple[str, RateLimitItem] | None = g.pop(_PENDING, None)
        if pending is None:
            return keyed.hit(key)
        endpoint, item = pending
        address = request.remote_addr or "127.0.0.1"
        try:
            allowed, window, token_window = self.strategy.hit_with_then(
                item, (self._namespace, address, endpoint), keyed.item, keyed.identifiers(key)
            )
        except Exception as exc:  # any store failure means "serve without this limit"
            log.warning("rate limit unavailable: %s", type(exc).__name__)
            return None
        setattr(g, _WINDOW, (item, window))
        if not allowed:
            log.info("rate limit %s exceeded at endpoint %s", item, endpoint)
            raise Problem(429, "Too Many Requests", str(item))
        if token_window is None:
            return None
        return max(1, math.ceil(token_window.reset_time - time.time()))

    def check(self, endpoint: str, item: RateLimitItem) -> None:
        """Count this request against ``item`` for its address; 429 past the limit."""
        address = request.remote_addr or "127.0.0.1"
        try:
            allowed, window = self.strategy.hit_with_stats(item, self._namespace, address, endpoint)
        except Exception as exc:  # any store failure means "serve without this limit"
            log.warning("rate limit unavailable: %s", type(exc).__name__)
            return
        setattr(g, _WINDOW, (item, window))
        if not allowed:
            log.info("rate limit %s exceeded at endpoint %s", item, endpoint)
            raise Problem(429, "Too Many Requests", str(item))

    @staticmethod
    def _headers(response: Response) -> Response:
        found: tuple[RateLimitItem, WindowStats] | None = g.get(_WINDOW)
        if found is None:
            return response
        item, window = found
        reset_at = int(window.reset_time + 1)
        headers = response.headers
        headers["X-RateLimit-Limit"] = str(item.amount)
        headers["X-RateLimit-Remaining"] = str(window.remaining)
        headers["X-RateLimit-Reset"] = str(reset_at)
        if response.status_code in _RETRY_STATUSES:
            now = time.time()
            own = headers.get("Retry-After")
            if own is not None and own.isdigit():
                reset_at = max(int(now + int(own)), reset_at)
            headers["Retry-After"] = str(int(reset_at - now))
        return response


# Increment a fixed window and read its TTL in the same round trip (limits' own script, plus TTL).
_INCR_EXPIRE_TTL = """
local current = redis.call("incrby", KEYS[1], ARGV[2])
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""

# The same for two windows, the second counted only while the first is within its limit
# (ARGV: first expiry, first limit, second expiry, second limit). Both keys are in one script:
# a plain Redis server, not a cluster, where they could live on different nodes.
_INCR_BOTH = """
local first = redis.call("incrby", KEYS[1], 1)
if first == 1 then
    redis.call("expire", KEYS[1], ARGV[1])
end
local first_ttl = redis.call("ttl", KEYS[1])
if first > tonumber(ARGV[2]) then
    return {first, first_ttl, 0, -1}
end
local second = redis.call("incrby", KEYS[2], 1)
if second == 1 then
    redis.call("expire", KEYS[2], ARGV[3])
end
return {first, first_ttl, second, redis.call("ttl", KEYS[2])}
"""


class _Script:
    """A Lua script run on a Redis connection of the calling thread's own.

    redis-py wraps every command in a pool checkout and release, a retry policy and
    observability hooks; for the one script a limited request runs, that was more CPU than
    the round trip itself (issue 12). Each thread keeps one connection made with the client's
    own settings (address, timeouts) and sends the script on it directly: by its digest, and
    its source when Redis does not have it (after a restart or SCRIPT FLUSH). A connection that
    fails is closed, the error goes to the caller (who serves without the limit), and the next
    call connects again.
    """

    def __init__(self, client: Any, source: str, connections: threading.local | None = None):
        self._pool = client.connection_pool
        self._source = source
        self._sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        # Shared by the scripts of one store, so that a thread holds one connection for all.
        self._local = connections if connections is not None else threading.local()

    def __call__(self, keys: list[str], args: list[int]) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self._pool
            connection = self._local.connection = pool.connection_class(**pool.connection_kwargs)
        try:
            try:
                connection.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
                return connection.read_response()
            except NoScriptError:
                connection.send_command("EVAL", self._source, len(keys), *keys, *args)
                return connection.read_response()
        except ResponseError:
            raise  # an error answer leaves the connection in step
        except BaseException:
            connection.disconnect()
            raise


class CountingFixedWindow(FixedWindowRateLimiter):
    """A fixed window whose hit also learns the window's count and expiry, in one round trip.

    The ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` headers need the window's stats
    after each hit, which with the stock strategy costs a GET and a TTL on Redis per request on
    top of the increment (issue 12). :meth:`hit_with_stats` returns them from the increment
    itself (a Lua script on Redis, ``RETURNING`` on SQLite); other stores read them after.
    """

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        # Only on a plain Redis store: a cluster or sentinel store (subclasses) routes commands
        # to other nodes, which its client knows and a bare connection does not.
        self._script: Any = None
        self._both: _Script | None = None
        if isinstance(storage, RedisStorage):
            client = storage.get_connection()
            if type(storage) is RedisStorage:
                connections = threading.local()
                self._script = _Script(client, _INCR_EXPIRE_TTL, connections)
                self._both = _Script(client, _INCR_BOTH, connections)
            else:
                self._script = client.register_script(_INCR_EXPIRE_TTL.encode())

    def _incr(self, key: str, expiry: int, amount: int) -> tuple[int, float | None]:
        storage = self.storage
        if isinstance(storage, SQLiteStorage):
            return storage.incr_with_expiry(key, expiry, amount)
        if self._script is not None and isinstance(storage, RedisStorage):
            count, ttl = self._script([storage.prefixed_key(key)], [expiry, amount])
            return int(count), max(int(ttl), 0) + time.time()
        return storage.incr(key, expiry, amount=amount), None

    def hit_with_stats(
        self, item: RateLimitItem, *identifiers: str, cost: int = 1
    ) -> tuple[bool, WindowStats]:
        """Count a hit; whether it was within the limit, and the window's stats after it."""
        count, expires_at = self._incr(item.key_for(*identifiers), item.get_expiry(), cost)
        if expires_at is None:
            return count <= item.amount, super().get_window_stats(item, *identifiers)
        return count <= item.amount, WindowStats(expires_at, max(0, item.amount - count))

    def hit_with_then(
        self,
        first: RateLimitItem,
        first_ids: tuple[str, ...],
        then: RateLimitItem,
        then_ids: tuple[str, ...],
    ) -> tuple[bool, WindowStats, WindowStats | None]:
        """Hit ``first``, and ``then`` only if ``first`` allowed it: one round trip on Redis.

        Returns whether ``first`` allowed the request, its window, and ``then``'s window when
        ``then`` refused the request (None when it allowed it, or was not counted).
        """
        if self._both is not None and isinstance(self.storage, RedisStorage):
            keys = [
                self.storage.prefixed_key(first.key_for(*first_ids)),
                self.storage.prefixed_key(then.key_for(*then_ids)),
            ]
            args = [first.get_expiry(), first.amount, then.get_expiry(), then.amount]
            count, ttl, then_count, then_ttl = self._both(keys, args)
            now = time.time()
            window = WindowStats(max(int(ttl), 0) + now, max(0, first.amount - int(count)))
            if int(count) > first.amount:
                return False, window, None
            if int(then_count) <= then.amount:
                return True, window, None
            return True, window, WindowStats(max(int(then_ttl), 0) + now, 0)
        allowed, window = self.hit_with_stats(first, *first_ids)
        if not allowed:
            return False, window, None
        then_allowed, then_window = self.hit_with_stats(then, *then_ids)
        return True, window, None if then_allowed else then_window

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self._incr(item.key_for(*identifiers), item.get_expiry(), cost)[0] <= item.amount


class KeyedLimit:
    """A fixed-window limit counted per caller-chosen key, in the route limits' shared store."""

    def __init__(
        self, strategy: CountingFixedWindow, rate: str, namespace: str, scope: str
    ) -> None:
        self._strategy = strategy
        self.item: RateLimitItem = parse(rate)
        self._ids = (namespace, scope)

    def identifiers(self, key: str) -> tuple[str, ...]:
        """What the store's key for ``key`` is made of (with the item's own parts)."""
        return (*self._ids, key)

    def hit(self, key: str) -> int | None:
        """Count one request for ``key``: None while within the limit, else seconds to wait.

        A store that cannot be reached lets the request through, as for the route limits:
        serving without a limit for a moment beats failing every reader.
        """
        try:
            allowed, window = self._strategy.hit_with_stats(self.item, *self.identifiers(key))
        except Exception as exc:  # any store failure means "serve without this limit"
            log.warning("keyed rate limit unavailable: %s", type(exc).__name__)
            return None
        if allowed:
            return None
        return max(1, math.ceil(window.reset_time - time.time()))


@dataclass(frozen=True)
class KeyedLimits:
    subscription_token: KeyedLimit
    auth_failures: KeyedLimit


def keyed_limits() -> KeyedLimits | None:
    """The current app's keyed limits (None in an app built without the limiter)."""
    limits: KeyedLimits | None = current_app.extensions.get(_EXTENSION)
    return limits


def too_many(retry_after: int, detail: str) -> Problem:
    return Problem(429, "Too Many Requests", detail, headers={"Retry-After": str(retry_after)})


def token_key(token: str) -> str:
    """A device token's counter key: a digest, so stores and their dumps never hold the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def limit_device_token(token: str) -> None:
    """Count one subscription write for this device token; 429 past ``subscription_token``.

    The route's own limit, pending since the view was entered, is counted in the same round
    trip (see :class:`RouteLimits`), and its 429 comes first.
    """
    limits = keyed_limits()
    if limits is None:
        return
    routes: RouteLimits | None = current_app.extensions.get(ROUTE_LIMITS)
    key = token_key(token)
    if routes is None:
        wait = limits.subscription_token.hit(key)
    else:
        wait = routes.check_with_token(limits.subscription_token, key)
    if wait is not None:
        raise too_many(wait, "Too many subscription changes for this device; retry later.")


class SQLiteStorage(Storage):
    """Fixed-window counters in an SQLite file, safe across threads and processes.

    Each increment is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement, atomic
    under SQLite's write lock, so concurrent workers never lose a hit. Counters are not worth an
    fsync (a crash at worst forgets the current minute), hence ``synchronous=OFF``.
    """

    STORAGE_SCHEME = [SQLITE_SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: object):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        if uri is None:
            raise ValueError(f"{SQLITE_SCHEME}:// needs a file path")
        # Nothing touches the disk until the first limited request: an unwritable data dir then
        # means requests served without limits (the limits swallow store errors), not an API
        # that cannot start.
        self.path = Path(unquote(urlsplit(uri).path))
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=2, isolation_level=None)
            db.execute("PRAGMA synchronous=OFF")
            self._prepare(db)
            self._local.db, self._local.increments = db, 0
        return db

    @staticmethod
    def _prepare(db: sqlite3.Connection) -> None:
        """WAL mode and the table, once per file; retried while another worker does the same.

        Switching the journal mode takes the file's exclusive lock without waiting on the busy
        timeout, so workers starting together can see "database is locked" here; the mode is
        persistent, so only the first connection to a new file has to win.
        """
        for attempt in range(50):
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS windows "
                    "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)"
                )
                return
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.incr_with_expiry(key, expiry, amount)[0]

    def incr_with_expiry(self, key: str, expiry: int, amount: int = 1) -> tuple[int, float]:
        """Increment, and return the count and the window's expiry from the same statement."""
        now = time.time()
        db = self._db()
        row = db.execute(
            "INSERT INTO windows (key, count, expires_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN expires_at <= ?4 THEN ?2 ELSE count + ?2 END, "
            "expires_at = CASE WHEN expires_at <= ?4 THEN ?3 ELSE expires_at END "
            "RETURNING count, expires_at",
            (key, amount, now + expiry, now),
        ).fetchone()
        self._local.increments += 1
        if self._local.increments % _PURGE_EVERY == 0:
            db.execute("DELETE FROM windows WHERE expires_at <= ?", (now,))
        return int(row[0]), float(row[1])

    def get(self, key: str) -> int:
        row = (
            self._db()
            .execute(
                "SELECT count FROM windows WHERE key = ? AND expires_at > ?", (key, time.time())
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = (
            self._db()
            .execute("SELECT expires_at FROM windows WHERE key = ? AND expires_at > ?", (key, now))
            .fetchone()
        )
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM windows").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM windows WHERE key = ?", (key,))
