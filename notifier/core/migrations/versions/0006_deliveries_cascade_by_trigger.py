"""an alert's deliveries go with it by a trigger on alerts, not a foreign key checked per row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:10:00

The foreign key ``deliveries.alert_id -> alerts.id`` checked every inserted delivery: PostgreSQL
runs its referential check once per row (a lookup and a KEY SHARE lock of the alert), 500 per
planned page, about 5 of the planner's 18 µs of PostgreSQL CPU per device (docs/performance.md,
``bench/pg_cpu.py``). Nothing gains from the check: the one writer of deliveries, the planner,
inserts them in the transaction that holds the alert ``FOR UPDATE``, so the alert exists and
an operator's ``DELETE`` of it waits for that commit. What the key did besides is the cascade,
and a trigger on ``alerts`` keeps it: deleting an alert deletes its deliveries, in the same
statement's transaction, on both backends (``notifier.core.models.ALERT_DELETE_TRIGGER`` gives
schemas created from the models the same trigger).

On PostgreSQL, dropping the key is a catalogue change (no scan) but takes an ACCESS EXCLUSIVE
lock on ``deliveries``, and creating the trigger a SHARE ROW EXCLUSIVE one on ``alerts``, both
held to the migration's commit: writes to either wait meanwhile. ``lock_timeout`` (5 s, set
first) bounds that wait: behind a long transaction the migration fails, to be run again, rather
than hold every delivery and alert write behind it; best run between fan-outs. SQLite rebuilds
the table in batch mode. The downgrade adds the key back (validated: a scan of ``deliveries``)
and drops the trigger.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

FK = "fk_deliveries_alert_id_alerts"

# The function finds deliveries in the alert's own schema, whatever the deleting session's
# search_path.
TRIGGER = {
    "postgresql": (
        "CREATE OR REPLACE FUNCTION alerts_delete_deliveries() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN "
        "EXECUTE format('DELETE FROM %I.deliveries WHERE alert_id = $1', TG_TABLE_SCHEMA) "
        "USING OLD.id; RETURN NULL; END $$",
        "CREATE TRIGGER alerts_delete_deliveries AFTER DELETE ON alerts "
        "FOR EACH ROW EXECUTE FUNCTION alerts_delete_deliveries()",
    ),
    "sqlite": (
        "CREATE TRIGGER alerts_delete_deliveries AFTER DELETE ON alerts FOR EACH ROW "
        "BEGIN DELETE FROM deliveries WHERE alert_id = OLD.id; END",
    ),
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        for statement in TRIGGER[dialect]:
            op.execute(statement)
        op.execute(f"ALTER TABLE deliveries DROP CONSTRAINT {FK}")
        return
    # SQLite checks a trigger's tables when a table is renamed: the rebuild goes first.
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
    for statement in TRIGGER[dialect]:
        op.execute(statement)


def downgrade() -> None:
    # One transaction on both backends: no alert is deleted between the two steps.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS alerts_delete_deliveries ON alerts")
        op.execute("DROP FUNCTION IF EXISTS alerts_delete_deliveries()")
    else:
        op.execute("DROP TRIGGER IF EXISTS alerts_delete_deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.create_foreign_key(FK, "alerts", ["alert_id"], ["id"], ondelete="CASCADE")
