"""What every process builds once at start: settings, database engine, sessions, topic catalogue.

The API, the Celery workers and the CLI all start from :meth:`Runtime.start`, so they agree on the
database, and the embedded (SQLite) mode creates and migrates its own file on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifier.core import migrate
from notifier.core.db import is_sqlite, make_engine, make_session_factory, transaction
from notifier.core.outbox import Publisher, dispatch
from notifier.core.settings import Settings, SettingsError, load_settings
from notifier.subscriptions.topics import TopicSpec, load_catalogue, sync_topics


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalogue: list[TopicSpec] = field(default_factory=list)
    _publisher: Publisher | None = None

    @classmethod
    def start(cls, settings: Settings | None = None, *, prepare_database: bool = True) -> Runtime:
        """Connect, and make the database ready: migrate SQLite, check PostgreSQL is migrated.

        PostgreSQL is migrated by the operator (`notifier db upgrade`), not by whichever process
        starts first; a server that is behind refuses to start rather than fail on every request.
        """
        settings = settings or load_settings()
        engine = make_engine(settings.effective_database_url)
        runtime = cls(settings, engine, make_session_factory(engine))
        runtime.catalogue = load_catalogue(settings.topics_file)
        if prepare_database:
            runtime.prepare_database()
        return runtime

    def prepare_database(self) -> None:
        if is_sqlite(self.engine):
            migrate.upgrade(self.engine)
        elif not migrate.is_up_to_date(self.engine):
            raise SettingsError(
                "the database schema is not up to date: run `notifier db upgrade` "
                f"(at {migrate.current_revision(self.engine)}, "
                f"code expects {migrate.head_revision(self.engine)})"
            )
        self.sync_catalogue()

    def sync_catalogue(self) -> None:
        with transaction(self.sessions) as session:
            sync_topics(session, self.catalogue)

    @property
    def alerting_topics(self) -> frozenset[str]:
        """Topics whose every article alerts: flagged in the catalogue or by settings."""
        flagged = {t.slug for t in self.catalogue if t.alerting}
        return frozenset(flagged | set(self.settings.alert_topics))

    @property
    def publisher(self) -> Publisher:
        """Celery, built on first use so processes that never publish never connect."""
        if self._publisher is None:
            from workers.celery_app import make_celery
            from workers.publish import CeleryPublisher

            self._publisher = CeleryPublisher(make_celery(self.settings))
        return self._publisher

    @publisher.setter
    def publisher(self, value: Publisher) -> None:
        self._publisher = value

    def dispatch_triggers(self, ids: list[int]) -> int:
        """Publish triggers committed by this process (after the commit, never before)."""
        return dispatch(self.sessions, self.publisher, ids) if ids else 0

    def close(self) -> None:
        self.engine.dispose()
