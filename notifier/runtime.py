"""What every process builds once at start: settings, database engine, sessions, topic catalogue.

The API, the Celery workers and the CLI all start from :meth:`Runtime.start`, so they agree on the
database, and the embedded (SQLite) mode creates and migrates its own file on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from notifier.core import migrate
from notifier.core.db import is_sqlite, make_engine, make_session_factory, transaction
from notifier.core.outbox import Publisher, publish_after_commit
from notifier.core.settings import Settings, SettingsError, load_settings
from notifier.subscriptions.topics import TopicSpec, load_catalogue, sync_topics

# Builds the process's publisher from its settings. The API and the workers pass the Celery one
# (``workers.publish``); the runtime never imports the workers, which sit above it.
PublisherFactory = Callable[[Settings], Publisher]


class NoPublisher(RuntimeError):
    """This process was started without a way to publish triggers."""


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalogue: list[TopicSpec] = field(default_factory=list)
    publisher_factory: PublisherFactory | None = None
    _publisher: Publisher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Every commit through these sessions publishes the triggers it added (core.outbox).
        publish_after_commit(self.sessions, self.publisher_if_any)

    @classmethod
    def start(
        cls,
        settings: Settings | None = None,
        *,
        prepare_database: bool = True,
        publisher_factory: PublisherFactory | None = None,
    ) -> Runtime:
        """Connect, and make the database ready: migrate SQLite, check PostgreSQL is migrated.

        PostgreSQL is migrated by the operator (`notifier db upgrade`), not by whichever process
        starts first; a server that is behind refuses to start rather than fail on every request.
        ``publisher_factory`` is called on the first publish, so a process that never publishes
        never connects to the broker; without one (the CLI) triggers wait for the sweeper.
        """
        settings = settings or load_settings()
        engine = make_engine(settings.effective_database_url)
        runtime = cls(
            settings, engine, make_session_factory(engine), publisher_factory=publisher_factory
        )
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
        """The publisher from ``publisher_factory``, built on first use."""
        publisher = self.publisher_if_any()
        if publisher is None:
            raise NoPublisher("this runtime was started without a publisher_factory")
        return publisher

    @publisher.setter
    def publisher(self, value: Publisher) -> None:
        self._publisher = value

    def publisher_if_any(self) -> Publisher | None:
        """The publisher, built on first use, or None in a process without one (the CLI)."""
        if self._publisher is None and self.publisher_factory is not None:
            self._publisher = self.publisher_factory(self.settings)
        return self._publisher

    def close(self) -> None:
        self.engine.dispose()
