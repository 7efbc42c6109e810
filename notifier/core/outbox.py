"""The transactional outbox: triggers are rows committed with the state they announce.

A view or task writes the row in its transaction (:func:`add_trigger`); once that transaction
commits, the hook installed by :func:`publish_after_commit` asks a :class:`Publisher` to send the
Celery message and marks the row dispatched. If the process dies or the broker is down in
between, the row stays undispatched and the sweeper sends it later, so a trigger is never lost
and never sent before its data exists. Work done on a Core connection instead of a Session keeps
the same promise through :func:`core_transaction`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from notifier.core.models import Outbox, utcnow
from notifier.core.vocabulary import TriggerKind

log = logging.getLogger(__name__)

# Celery messages carrying a countdown longer than the broker's visibility timeout are delivered
# repeatedly; longer waits are left to the sweeper instead of the broker.
MAX_COUNTDOWN = 600

_outbox = cast(Table, Outbox.__table__)


class Publisher(Protocol):
    """Sends a trigger to the workers. Implemented over Celery in ``workers.publish``."""

    def publish(self, kind: TriggerKind, ref: str, countdown: float = 0) -> None: ...


# Where a session keeps the ids of the triggers it added, until its transaction ends.
_ADDED_TRIGGERS = "notifier.outbox.added_triggers"


def add_trigger(
    session: Session, kind: TriggerKind, ref: str, *, due_at: datetime | None = None
) -> Outbox:
    """Write a trigger in the session's transaction; it is published once that transaction commits.

    The id is remembered on the session, so :func:`publish_after_commit` publishes exactly the
    triggers this unit of work added, and no caller has to remember to.
    """
    row = Outbox(kind=kind, ref=ref, due_at=due_at or utcnow())
    session.add(row)
    session.flush()
    session.info.setdefault(_ADDED_TRIGGERS, []).append(row.id)
    return row


def publish_after_commit(
    sessions: sessionmaker[Session], publisher: Callable[[], Publisher | None]
) -> None:
    """Publish the triggers each session of ``sessions`` adds, right after that session commits.

    Warehouse's after-commit hook, as SQLAlchemy session events: the commit of the outermost
    transaction publishes what :func:`add_trigger` recorded; a rollback (or a session closed
    without committing) forgets it, so nothing is ever sent for data that does not exist.
    Releasing a SAVEPOINT is not a commit and publishes nothing. ``publisher`` is asked at each
    commit; when it gives ``None`` (a process that never publishes) the rows wait for the
    sweeper. A failure is logged, never raised: the caller's data is committed already and the
    sweeper re-sends whatever stayed undispatched.
    """

    def _publish_on_commit(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a SAVEPOINT was released; the transaction around it may still roll back
        ids: list[int] = session.info.pop(_ADDED_TRIGGERS, [])
        if ids:
            _publish_committed(sessions, publisher, ids)

    def _forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
        # After a commit the ids were taken already; what is left here was rolled back. Ids of
        # rows from a SAVEPOINT that rolled back inside a committed transaction stay until the
        # commit: _dispatch_added() marks rows by id, and a row that does not exist is not
        # published.
        if transaction.parent is None:
            session.info.pop(_ADDED_TRIGGERS, None)

    event.listen(sessions, "after_commit", _publish_on_commit)
    event.listen(sessions, "after_transaction_end", _forget_on_rollback)


def _publish_committed(
    sessions: sessionmaker[Session], publisher: Callable[[], Publisher | None], ids: list[int]
) -> None:
    try:
        target = publisher()
        if target is None:
            log.debug("no publisher in this process; the sweeper will publish the triggers")
            return
        bind = sessions.kw.get("bind")
        if bind is not None and bind.dialect.name == "sqlite":
            # SQLite locks the whole file for a write transaction: holding it across a publish
            # would stall every other writer (and a publisher that reads) for its duration.
            dispatch(sessions, target, ids)
        else:
            _dispatch_added(sessions, target, ids)
    except Exception as exc:  # the database or the publisher's set-up; the rows are safe
        log.warning(
            "triggers not published after commit; the sweeper will retry",
            extra={"fields": {"triggers": len(ids), "error": type(exc).__name__}},
        )


def _dispatch_added(sessions: sessionmaker[Session], publisher: Publisher, ids: list[int]) -> int:
    """Publish the triggers a commit added, marking them dispatched in one transaction.

    One ``UPDATE ... RETURNING`` both reads the rows and marks them, and the publishing happens
    before that transaction commits: three round trips instead of a read and an update in two
    transactions of their own (issue 12). Reading the rows back from the database, not from
    memory, keeps a row of a rolled-back SAVEPOINT unpublished. Until the commit the marks are
    invisible, so a process that dies while publishing leaves every row undispatched for the
    sweeper; a publish that fails un-marks the rows not published, in the same transaction.
    Holding the rows' locks across the publish blocks nobody on PostgreSQL: the rows are new, and
    the sweeper skips them for its grace period. SQLite locks the whole file instead, so there
    :func:`dispatch` keeps its read, publish, then mark in transactions of their own.
    """
    now = utcnow()
    with sessions.begin() as session:
        # On the table, not the mapped class: the ORM's bulk UPDATE machinery (session
        # synchronisation, which these rows do not need) cost as much CPU as the round trip.
        rows = session.execute(
            update(_outbox)
            .where(
                _outbox.c.id.in_(ids),
                _outbox.c.dispatched_at.is_(None),
                _outbox.c.due_at <= now + timedelta(seconds=MAX_COUNTDOWN),
            )
            .values(dispatched_at=now)
            .returning(_outbox.c.id, _outbox.c.kind, _outbox.c.ref, _outbox.c.due_at)
        ).all()
        sent = _publish_in_order(publisher, rows, now)
        unsent = [row.id for row in rows if row.id not in sent]
        if unsent:
            session.execute(
                update(_outbox).where(_outbox.c.id.in_(unsent)).values(dispatched_at=None)
            )
    return len(sent)


class _Due(Protocol):
    """A trigger to publish: an outbox row read back, or an :class:`AddedTrigger`."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> TriggerKind: ...
    @property
    def ref(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...


def _publish_in_order(publisher: Publisher, triggers: Iterable[_Due], now: datetime) -> list[int]:
    """Publish the triggers soonest due first; returns the ids published.

    One due further ahead than the broker may hold a countdown (``MAX_COUNTDOWN``) is left for
    the sweeper. The first failure stops the rest, which would fail the same way with the
    broker down; it is logged, never raised: the rows stay undispatched for the sweeper.
    """
    sent: list[int] = []
    for trigger in sorted(triggers, key=lambda t: t.due_at):
        countdown = max(0.0, (trigger.due_at - now).total_seconds())
        if countdown > MAX_COUNTDOWN:
            continue
        try:
            publisher.publish(trigger.kind, trigger.ref, countdown)
        except Exception as exc:
            log.warning(
                "trigger not published; the sweeper will retry",
                extra={
                    "fields": {
                        "kind": trigger.kind,
                        "ref": trigger.ref,
                        "error": type(exc).__name__,
                    }
                },
            )
            break
        sent.append(trigger.id)
    return sent


def dispatch(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    ids: Iterable[int] | None = None,
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> int:
    """Publish undispatched triggers (those ``ids``, or all due ones) and mark them dispatched.

    Rows due far in the future stay undispatched: the sweeper publishes them when they come due.
    A publish failure leaves the row for the next sweep; it is logged, never raised, because the
    caller's data is already safely committed.
    """
    now = now or utcnow()
    with sessions() as session:
        query = select(Outbox).where(Outbox.dispatched_at.is_(None))
        if ids is not None:
            query = query.where(Outbox.id.in_(list(ids)))
        else:
            query = query.where(Outbox.due_at <= now + timedelta(seconds=MAX_COUNTDOWN))
            query = query.where(Outbox.created_at <= now - grace)
        rows = list(session.scalars(query.order_by(Outbox.due_at).limit(1000)))
    sent = 0
    for row in rows:
        countdown = max(0.0, (row.due_at - now).total_seconds())
        if countdown > MAX_COUNTDOWN:
            continue
        try:
            publisher.publish(row.kind, row.ref, countdown)
        except Exception as exc:
            log.warning(
                "trigger not published; the sweeper will retry",
                extra={"fields": {"kind": row.kind, "ref": row.ref, "error": type(exc).__name__}},
            )
            break  # the broker is down: the remaining rows would fail the same way
        with sessions.begin() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.dispatched_at.is_(None))
                .values(dispatched_at=utcnow())
            )
        sent += 1
    return sent


# --- Core connections ---------------------------------------------------------------------------
# A request that writes a few rows spends more CPU in the Session's unit of work than in
# PostgreSQL, so the hottest writer (an alerting CMS event) works on a Core connection. It keeps
# the Session's promise with an explicit unit of work: triggers are remembered as they are
# written and published only once the transaction has committed.

_INSERT_TRIGGER = insert(_outbox).returning(_outbox.c.id)
_MARK_DISPATCHED = (
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("ids", expanding=True)), _outbox.c.dispatched_at.is_(None))
    .values(dispatched_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class AddedTrigger:
    """A trigger written in a Core transaction, as it will be published once that commits."""

    id: int
    kind: TriggerKind
    ref: str
    due_at: datetime


@dataclass(slots=True)
class CoreWork:
    """One Core transaction and the triggers written in it (see :func:`core_transaction`)."""

    connection: Connection
    triggers: list[AddedTrigger] = field(default_factory=list)
    rolled_back: bool = False

    def add_trigger(
        self, kind: TriggerKind, ref: str, *, due_at: datetime | None = None
    ) -> AddedTrigger:
        """Write a trigger in this transaction; it is published once the transaction commits."""
        now = utcnow()
        due = due_at or now
        row_id = self.connection.execute(
            _INSERT_TRIGGER, {"kind": kind, "ref": ref, "due_at": due, "created_at": now}
        ).scalar_one()
        trigger = AddedTrigger(row_id, kind, ref, due)
        self.triggers.append(trigger)
        return trigger

    def rollback(self) -> None:
        """Undo the transaction now (the caller decided against it): nothing is published."""
        self.connection.rollback()
        self.triggers.clear()
        self.rolled_back = True


@contextmanager
def core_transaction(
    engine: Engine, publisher: Callable[[], Publisher | None] | None
) -> Iterator[CoreWork]:
    """A Core connection's transaction whose triggers are published once it commits.

    The transaction commits when the block ends, rolls back on an exception (which propagates)
    or when the block called :meth:`CoreWork.rollback`; only a commit publishes, so nothing is
    sent for data that does not exist. ``publisher`` is asked after the commit; ``None``, or a
    getter that gives ``None``, leaves the rows for the sweeper, as does a broker that is down.
    """
    with engine.connect() as connection:
        work = CoreWork(connection)
        with connection.begin():
            yield work
            if work.rolled_back:
                return
        if work.triggers:
            publish_added(connection, publisher, work.triggers)


def publish_added(
    connection: Connection,
    publisher: Callable[[], Publisher | None] | None,
    triggers: list[AddedTrigger],
) -> int:
    """Publish triggers whose transaction committed, then mark them dispatched; returns how many.

    The rows are known to exist (their transaction committed), so they are published from
    memory and marked in one UPDATE after, in a transaction of its own: one statement instead
    of the Session hook's read-and-mark, and no lock held across the publish (SQLite's is the
    whole file). A process that dies between the publish and the mark leaves a row that the
    sweeper sends again after its grace period: a duplicate trigger, which the tasks tolerate,
    never a lost one. A publish that fails leaves its row and the later ones for the sweeper;
    it is logged, never raised, because the caller's data is committed already.
    """
    try:
        target = publisher() if publisher is not None else None
        if target is None:
            log.debug("no publisher in this process; the sweeper will publish the triggers")
            return 0
        now = utcnow()
        sent = _publish_in_order(target, triggers, now)
        if sent:
            _mark_dispatched(connection, sent, now)
        return len(sent)
    except Exception as exc:  # the database or the publisher's set-up; the rows are safe
        log.warning(
            "triggers not published after commit; the sweeper will retry",
            extra={"fields": {"triggers": len(triggers), "error": type(exc).__name__}},
        )
        return 0


def _mark_dispatched(connection: Connection, ids: list[int], now: datetime) -> None:
    """One UPDATE in a transaction of its own; on PostgreSQL without BEGIN and COMMIT, as a
    single statement commits by itself (two round trips fewer). SQLite keeps its transaction:
    its connections issue their own BEGIN IMMEDIATE (``core.db``), which autocommit would
    leave open."""
    if connection.dialect.name == "postgresql":
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(_MARK_DISPATCHED, {"ids": ids, "now": now})
        return
    with connection.begin():
        connection.execute(_MARK_DISPATCHED, {"ids": ids, "now": now})
