"""Migrations build the schema the models describe, and come back down cleanly, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from notifier.core import migrate
from notifier.core.db import make_engine
from notifier.core.models import Base


def test_upgrade_matches_the_models_and_downgrade_removes_everything(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []

    migrate.downgrade(engine, "base")
    migrate.upgrade(engine)  # and back, as a deploy rollback and roll-forward would
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_audience_paging_is_served_by_the_subscription_key(db_url: str) -> None:
    engine = make_engine(db_url)
    pk = inspect(engine).get_pk_constraint("subscriptions")
    assert pk["constrained_columns"] == ["topic_id", "device_id"]
    engine.dispose()
