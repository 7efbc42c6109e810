"""Migrations build the schema the models describe, and come back down cleanly, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from notifier.core import migrate
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import DELIVERIES_FILLFACTOR, Base, Delivery
from notifier.core.vocabulary import DeliveryStatus
from tests.factories import due_alert


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


def test_0004_moves_existing_devices_to_the_default_app_and_scopes_tokens_to_apps(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    migrate.downgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (token, platform, state, created_at, last_seen_at) "
                "VALUES ('tok-existing-1', 'android', 'active', :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    migrate.upgrade(engine)
    insert = text(
        "INSERT INTO devices (app, token, platform, state, created_at, last_seen_at) "
        "VALUES (:app, 'tok-existing-1', 'ios', 'active', :now, :now)"
    )
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT app FROM devices")) == "default"
        # The same token in another app is another device...
        conn.execute(insert, {"app": "fr", "now": datetime.now(UTC)})
    # ... but not twice in one app.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"app": "fr", "now": datetime.now(UTC)})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM devices WHERE app = 'fr'"))
    migrate.downgrade(engine, "0003")
    with engine.begin() as conn:
        assert conn.scalar(text("SELECT token FROM devices")) == "tok-existing-1"
    migrate.upgrade(engine)
    engine.dispose()


def _deliveries_options(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        options = conn.scalar(
            text("SELECT reloptions FROM pg_class WHERE oid = CAST('deliveries' AS regclass)")
        )
    return list(options or [])


def test_0005_leaves_room_in_deliveries_pages_as_the_models_do(db_url: str) -> None:
    """The send's update of a delivery is HOT only with room on its page (docs/performance.md):
    migrated schemas and the models (metadata-created schemas) both say fillfactor 40, and the
    downgrade gives PostgreSQL's default back. SQLite has no fillfactor and is left alone."""
    engine = make_engine(db_url)
    options = Base.metadata.tables["deliveries"].dialect_options["postgresql"]["with"]
    assert options == {"fillfactor": DELIVERIES_FILLFACTOR}
    if engine.dialect.name != "postgresql":
        migrate.downgrade(engine, "0004")
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        engine.dispose()
        return
    assert _deliveries_options(engine) == [f"fillfactor={DELIVERIES_FILLFACTOR}"]
    migrate.downgrade(engine, "0004")
    assert _deliveries_options(engine) == []
    migrate.upgrade(engine)
    assert _deliveries_options(engine) == [f"fillfactor={DELIVERIES_FILLFACTOR}"]
    engine.dispose()


def _alert_with_deliveries(sessions: sessionmaker[Session], devices: int) -> str:
    with transaction(sessions) as session:
        alert = due_alert(session)
        for device_id in range(1, devices + 1):
            session.add(
                Delivery(
                    alert_id=alert.id,
                    device_id=device_id,
                    batch_id=1,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    updated_at=datetime.now(UTC),
                )
            )
        return alert.id


def _deleting_an_alert_deletes_its_deliveries_only(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    gone, kept = _alert_with_deliveries(sessions, 3), _alert_with_deliveries(sessions, 2)
    with engine.begin() as conn:  # an operator's delete, in SQL
        conn.execute(text("DELETE FROM alerts WHERE id = :id"), {"id": gone})
    with engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT alert_id, count(*) FROM deliveries "
                "WHERE alert_id IN (:gone, :kept) GROUP BY alert_id"
            ),
            {"gone": gone, "kept": kept},
        )
        assert dict(left.all()) == {kept: 2}


def test_0006_deleting_an_alert_still_deletes_its_deliveries(db_url: str) -> None:
    """0006 dropped deliveries' foreign key (checked per planned row); its cascade is a trigger."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert inspect(conn).get_foreign_keys("deliveries") == []
    _deleting_an_alert_deletes_its_deliveries_only(engine)
    migrate.downgrade(engine, "0005")  # the key and its cascade are back, the trigger gone
    _deleting_an_alert_deletes_its_deliveries_only(engine)
    migrate.upgrade(engine)
    engine.dispose()


def test_a_schema_created_from_the_models_cascades_too(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(engine)
    _deleting_an_alert_deletes_its_deliveries_only(engine)
    engine.dispose()
