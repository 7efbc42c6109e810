"""The transactional outbox: triggers are rows committed with the state they announce.

A view or task writes the row in its transaction (:func:`add_trigger`); once that transaction
commits, the hook installed by :func:`publish_after_commit` asks a :class:`Publisher` to send the
Celery message and marks the row dispatched. If the process dies or the broker is down in
between, the row stays undispatched and the sweeper sends it later, so a trigger is never lost
and never sent before its data exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from notifier.core.models import Outbox, utcnow
from notifier.core.vocabulary import TriggerKind

log = logging.getLogger(__name__)

# Celery messages carrying a countdown longer than the broker's visibility timeout are delivered
# repeatedly; longer waits are left to the sweeper instead of the broker.
MAX_COUNTDOWN = 600


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
    sent: list[int] = []
    with sessions.begin() as session:
        rows = session.execute(
            update(Outbox)
            .where(
                Outbox.id.in_(ids),
                Outbox.dispatched_at.is_(None),
                Outbox.due_at <= now + timedelta(seconds=MAX_COUNTDOWN),
            )
            .values(dispatched_at=now)
            .returning(Outbox.id, Outbox.kind, Outbox.ref, Outbox.due_at)
        ).all()
        for row in sorted(rows, key=lambda r: r.due_at):
            countdown = max(0.0, (row.due_at - now).total_seconds())
            try:
                publisher.publish(row.kind, row.ref, countdown)
            except Exception as exc:
                log.warning(
                    "trigger not published; the sweeper will retry",
                    extra={
                        "fields": {"kind": row.kind, "ref": row.ref, "error": type(exc).__name__}
                    },
                )
                break  # the broker is down: the remaining rows would fail the same way
            sent.append(row.id)
        unsent = [row.id for row in rows if row.id not in sent]
        if unsent:
            session.execute(update(Outbox).where(Outbox.id.in_(unsent)).values(dispatched_at=None))
    return len(sent)


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
