"""Alembic environment: runs on the connection or URL that ``notifier.core.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from notifier.core.db import make_engine
from notifier.core.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTERs
        compare_type=True,
        # Each migration commits on its own, so one may use an autocommit block (0004).
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `notifier db upgrade`")
run_migrations_online()
