"""The transactional outbox: triggers are rows committed with the state they announce.

A view or task writes the row in its transaction, and after the commit asks a
:class:`Publisher` to send the Celery message and marks the row dispatched. If the process dies
or the broker is down in between, the row stays undispatched and the sweeper sends it later, so a
trigger is never lost and never sent before its data exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier.core.models import Outbox, utcnow
from notifier.core.vocabulary import TriggerKind

log = logging.getLogger(__name__)

# Celery messages carrying a countdown longer than the broker's visibility timeout are delivered
# repeatedly; longer waits are left to the sweeper instead of the broker.
MAX_COUNTDOWN = 600


class Publisher(Protocol):
    """Sends a trigger to the workers. Implemented over Celery in ``workers.publish``."""

    def publish(self, kind: TriggerKind, ref: str, countdown: float = 0) -> None: ...


def add_trigger(
    session: Session, kind: TriggerKind, ref: str, *, due_at: datetime | None = None
) -> Outbox:
    row = Outbox(kind=kind, ref=ref, due_at=due_at or utcnow())
    session.add(row)
    session.flush()
    return row


def pending_trigger_ids(session: Session, ref: str) -> list[int]:
    return list(
        session.scalars(select(Outbox.id).where(Outbox.ref == ref, Outbox.dispatched_at.is_(None)))
    )


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
