"""deliveries keep room in each page for their one update (fillfactor 38), so it is HOT

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00

The planner inserts an alert's deliveries pending, 500 to a statement, and the send records
each once (``pending`` -> ``sent`` with FCM's message name, which makes the row about 60% wider:
112 -> 168-192 bytes). In full pages (fillfactor 100) the new version of the row cannot stay on
its page, so every update wrote it elsewhere and a new entry in both indexes (the primary key
and ``batch_id``'s): 2% of the updates were HOT. None of the updated columns is indexed, so with
room for the wider version on the page the update is HOT: the row stays on its page and no index
entry is written. 38% fills a page with rows that, all updated in one statement, still fit
beside their old versions with the longest name FCM gives (a project id of 30 characters, the
most it allows: tests/test_deliveries_hot.py); 40 left one row in 26 without room with it. 100%
HOT measured, and the heap ends about the size it had with 100, whose updates filled new pages
instead (docs/performance.md, ``bench/pg_cpu.py``).

Without downtime on PostgreSQL: ``ALTER TABLE ... SET (fillfactor = ...)`` only changes the
catalogue. It takes a SHARE UPDATE EXCLUSIVE lock, which reads and writes of the table do not
conflict with (only VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and other schema changes wait on
it), and it does not rewrite the table: it applies to pages filled from now on. Existing rows
stay as they are, which is what they need: deliveries already recorded are never updated again.
SQLite has no fillfactor; there the migration does nothing.

``batches`` keeps fillfactor 100: their updates change ``status`` and ``lease_expires_at``,
which ``ix_batches_status_lease`` indexes, so they could not be HOT whatever the room.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

FILLFACTOR = 38  # as notifier.core.models.DELIVERIES_FILLFACTOR, which new schemas are given


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE deliveries SET (fillfactor = {FILLFACTOR:d})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
