"""PostgreSQL connections are pinged only after sitting idle, and a dead one is replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from notifier.core import db
from notifier.core.db import RoundTrips, make_engine


def test_a_connection_in_use_is_not_pinged_and_an_idle_dead_one_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    admin = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        with RoundTrips(engine) as trips:
            with engine.connect() as conn:
                backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with engine.connect() as conn:  # back from the pool at once: no ping
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == backend
            assert "PING" not in trips.log

            # As if PostgreSQL restarted while the connection sat in the pool.
            with admin.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has sat idle since
            trips.reset()

            with engine.connect() as conn:
                replacement = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()

            assert trips.log[0] == "PING"
            assert replacement != backend
    finally:
        engine.dispose()
        admin.dispose()
