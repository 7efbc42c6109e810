"""several apps: devices, batches and alerts name their app; a token is unique within its app

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:10:00

Without downtime on PostgreSQL: the new columns have constant defaults, which PostgreSQL 11+
records in the catalogue without rewriting the table (every existing device and batch is then in
the ``default`` app); the unique index on ``(app, token)`` is built CONCURRENTLY, outside any
transaction, so subscriptions keep being written while it builds, and only then is it attached
as the constraint (no scan) and the old ``unique(token)`` dropped. SQLite rebuilds the table in
batch mode, as its ALTER TABLE cannot change constraints.

The downgrade restores ``unique(token)``; it fails, leaving the schema as it was, when one token
is registered in two apps (decide which device to keep first).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _app_column() -> sa.Column[str]:
    return sa.Column("app", sa.String(length=64), nullable=False, server_default="default")


def upgrade() -> None:
    postgresql = _is_postgresql()
    with op.batch_alter_table("devices") as batch:
        batch.add_column(_app_column())
        if not postgresql:
            batch.drop_constraint("uq_devices_token", type_="unique")
            batch.create_unique_constraint("uq_devices_app_token", ["app", "token"])
    with op.batch_alter_table("batches") as batch:
        batch.add_column(_app_column())
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("apps", sa.JSON(), nullable=True))
    if postgresql:
        with op.get_context().autocommit_block():
            op.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_devices_app_token "
                "ON devices (app, token)"
            )
            op.execute(
                "ALTER TABLE devices ADD CONSTRAINT uq_devices_app_token "
                "UNIQUE USING INDEX uq_devices_app_token"
            )
            op.execute("ALTER TABLE devices DROP CONSTRAINT uq_devices_token")


def downgrade() -> None:
    postgresql = _is_postgresql()
    if postgresql:
        with op.get_context().autocommit_block():
            op.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_devices_token ON devices (token)"
            )
            op.execute(
                "ALTER TABLE devices ADD CONSTRAINT uq_devices_token "
                "UNIQUE USING INDEX uq_devices_token"
            )
            op.execute("ALTER TABLE devices DROP CONSTRAINT uq_devices_app_token")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("apps")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("app")
    with op.batch_alter_table("devices") as batch:
        if not postgresql:
            batch.drop_constraint("uq_devices_app_token", type_="unique")
            batch.create_unique_constraint("uq_devices_token", ["token"])
        batch.drop_column("app")
