"""readers' preferences (quiet hours, daily cap, urgent overrides), editions and translations

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00

Existing rows get the defaults the models give new ones (server defaults, so the upgrade is one
statement per column on PostgreSQL and works on SQLite, whose ALTER TABLE only adds columns;
the downgrade drops columns in batch mode, which SQLite needs).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_DEVICE_COLUMNS = ("quiet_start", "quiet_end", "quiet_mode", "max_per_day", "urgent_overrides")
_ALERT_COLUMNS = (
    "urgency",
    "locale",
    "translations",
    "locales",
    "suppressed",
    "suppressed_quiet_hours",
    "suppressed_daily_cap",
    "silent",
)


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("quiet_start", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quiet_end", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quiet_mode", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("max_per_day", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("urgent_overrides", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("urgency", sa.String(length=8), nullable=False, server_default="normal")
        )
        batch.add_column(
            sa.Column("locale", sa.String(length=35), nullable=False, server_default="en")
        )
        batch.add_column(sa.Column("translations", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("locales", sa.JSON(), nullable=True))
        for name in _ALERT_COLUMNS[4:]:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("silent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "device_sends",
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_device_sends_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_sends_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "alert_id", name=op.f("pk_device_sends")),
    )
    op.create_index(
        "ix_device_sends_device_sent", "device_sends", ["device_id", "sent_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_device_sends_device_sent", table_name="device_sends")
    op.drop_table("device_sends")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("silent")
    with op.batch_alter_table("alerts") as batch:
        for name in reversed(_ALERT_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("devices") as batch:
        for name in reversed(_DEVICE_COLUMNS):
            batch.drop_column(name)
