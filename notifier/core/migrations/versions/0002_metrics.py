"""metrics counters and per-minute send stats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:56:59.733674
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "labels", name=op.f("pk_counters")),
    )
    op.create_table(
        "send_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "outcome", name=op.f("pk_send_minutes")),
    )


def downgrade() -> None:
    op.drop_table("send_minutes")
    op.drop_table("counters")
