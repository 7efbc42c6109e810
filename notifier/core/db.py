"""Engines and sessions: one place that knows how SQLite and PostgreSQL differ at connect time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for the backend.

    SQLite gets WAL (readers do not block the single writer), a busy timeout (the API, worker and
    beat share one file) and enforced foreign keys. PostgreSQL gets a ping before handing out a
    connection that sat idle in the pool (:func:`_ping_if_idle`), so a restarted server costs
    one failed checkout instead of a 500.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("poolclass", NullPool)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own BEGIN handling defers locking; taking the write lock at BEGIN avoids
        # "database is locked" upgrades from read to write in concurrent processes.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


# SQLAlchemy's pool_pre_ping pings at every checkout: one more round trip per request, for a
# connection that answered a few milliseconds ago. A connection is pinged only after sitting in
# the pool this long, which a restart of PostgreSQL takes (a connection that is busy meanwhile
# fails its request, which invalidates the whole pool, as with pre-ping).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "notifier.idle_since"


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection that sat idle; a dead one is replaced (the pool retries the checkout).

    A connection fresh from ``connect`` has no idle time (the pool clears ``info`` when it
    replaces one) and needs no ping.
    """
    dialect = engine.dialect

    def note_idle(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("connection failed its ping after sitting idle") from exc

    event.listen(engine, "checkin", note_idle)
    event.listen(engine, "checkout", ping_if_idle)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception.

    Outbox triggers written in it are published once it commits, by the hook every ``Runtime``
    installs on its sessions (:func:`notifier.core.outbox.publish_after_commit`), so a caller
    never publishes by hand and cannot publish before the commit or after a rollback.
    """
    with factory() as session, session.begin():
        yield session


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's backend (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_ignoring_conflicts(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT rows, skipping any that collide with an existing key (both backends support it)."""
    if rows:
        session.execute(dialect_insert(session, table).on_conflict_do_nothing(), rows)


def _autocommit(conn: Any) -> bool:
    """A connection in AUTOCOMMIT: SQLAlchemy still begins and ends its transaction, but the
    driver sends neither BEGIN nor COMMIT nor ROLLBACK, so none is a round trip."""
    return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")


class RoundTrips:
    """Counts what an engine sends to its database while active (tests and benchmarks).

    ``statements`` are the SQL statements executed (their first lines in ``log``);
    ``round_trips`` adds what SQLAlchemy sends besides them: BEGIN (PostgreSQL's driver sends it
    before a transaction's first statement), COMMIT or ROLLBACK, and connection pings. The counts
    are deterministic for a given request, so a test can pin them down.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.log: list[str] = []
        self.statements = 0
        self.others = 0
        self._ping: Any = None

    def __enter__(self) -> RoundTrips:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.listen(self.engine, name, getattr(self, f"_{name}"))
        dialect = self.engine.dialect
        self._ping = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self._other("ping")
            return bool(self._ping(dbapi_connection))

        dialect.do_ping = counted_ping  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.remove(self.engine, name, getattr(self, f"_{name}"))
        self.engine.dialect.do_ping = self._ping  # type: ignore[method-assign]

    @property
    def round_trips(self) -> int:
        return self.statements + self.others

    def reset(self) -> None:
        self.log.clear()
        self.statements = self.others = 0

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements += 1
        self.log.append(" ".join(statement.split())[:120])

    def _other(self, what: str) -> None:
        self.others += 1
        self.log.append(what.upper())

    def _begin(self, conn: Any) -> None:
        # SQLite's BEGIN IMMEDIATE is a statement of its own (see _sqlite_begin), counted above.
        if self.engine.dialect.name != "sqlite" and not _autocommit(conn):
            self._other("begin")

    def _commit(self, conn: Any) -> None:
        if not _autocommit(conn):
            self._other("commit")

    def _rollback(self, conn: Any) -> None:
        if not _autocommit(conn):
            self._other("rollback")
