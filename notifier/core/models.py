"""The database schema: devices and their topics, and the state of every alert's delivery.

The database is the source of truth for delivery ("nothing lost"): Celery messages only carry ids
and are triggers. Indexes are shaped for the hot queries: a topic's audience paged by device id
(``subscriptions`` primary key ``(topic_id, device_id)``), an alert's batches by status, and the
sweeper's scans by due time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from notifier.core.vocabulary import (
    AlertStatus,
    BatchStatus,
    DeliveryStatus,
    DeviceState,
    Platform,
    QuietMode,
    TriggerKind,
    Urgency,
)

E = TypeVar("E", bound=StrEnum)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL should use BIGINT for devices.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator[E]):
    """A :mod:`notifier.core.vocabulary` enum stored as its plain string value.

    The schema stays a ``VARCHAR`` (what the migrations create, and no enum type to alter when a
    state is added), yet reads give enum members and a write of a value outside the enum fails
    before it reaches the database, instead of storing a state nothing ever matches.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: object) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: object) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Topic(Base):
    """A topic readers can follow; the catalogue under ``config/`` is synced into this table."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Device(Base):
    """A device's FCM registration token and preferences. ``state`` becomes ``dead`` when pruned."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # The app (Firebase project, notifier/core/apps.py) the token was issued by; a token is
    # unique within its app. A server default too: bulk import inserts with SQL of its own.
    app: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    token: Mapped[str] = mapped_column(String(1024))
    platform: Mapped[Platform] = mapped_column(EnumText(Platform, 16))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[DeviceState] = mapped_column(
        EnumText(DeviceState, 16), default=DeviceState.ACTIVE
    )
    dead_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The reader's preferences (see notifier/pipeline/preferences.py). Quiet hours are minutes
    # after local midnight in ``timezone``; both ends set, or neither.
    quiet_start: Mapped[int | None] = mapped_column(Integer)
    quiet_end: Mapped[int | None] = mapped_column(Integer)
    quiet_mode: Mapped[QuietMode | None] = mapped_column(EnumText(QuietMode, 8))
    # None: the reader never chose (or cleared it), so NOTIFIER_DEFAULT_MAX_PER_DAY applies.
    max_per_day: Mapped[int | None] = mapped_column(Integer)
    # A server default too: bulk import inserts devices with SQL of its own.
    urgent_overrides: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (UniqueConstraint("app", "token", name="uq_devices_app_token"),)


class DeviceSend(Base):
    """A normal alert counted against a device's daily cap (one row per device and alert).

    Written by the send path in the transaction that decides the device's fate, under a lock on
    the device row, so two workers fanning out two alerts at once cannot both take the last
    place; a send that FCM then refuses gives its place back. Rows older than a day are only
    history and are deleted by the sweeper's retention.
    """

    __tablename__ = "device_sends"

    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[str] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_device_sends_device_sent", "device_id", "sent_at"),)


class Subscription(Base):
    """A device following a topic. The key order makes a topic's audience a keyset range scan."""

    __tablename__ = "subscriptions"

    topic_id: Mapped[int] = mapped_column(
        ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_subscriptions_device_id", "device_id"),)


class Article(Base):
    """The latest known revision of a CMS article; one alert per article at most."""

    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    headline: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    breaking: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str | None] = mapped_column(String(35))
    revision: Mapped[int | None] = mapped_column(Integer)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unpublished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookEvent(Base):
    """Every accepted webhook delivery and what was decided, keyed by ``webhook-id`` for dedupe."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    article_id: Mapped[str | None] = mapped_column(String(200), index=True)
    decision: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Alert(Base):
    """A notification to fan out, with its counters (which always add up) and timings.

    The four outcome counters are named after the :class:`DeliveryStatus` they count, so a
    device settling moves exactly the counter of its new status.
    """

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    article_id: Mapped[str | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), unique=True
    )
    headline: Mapped[str] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    priority: Mapped[str] = mapped_column(String(16), default="high")
    urgency: Mapped[Urgency] = mapped_column(EnumText(Urgency, 8), default=Urgency.NORMAL)
    # The language of headline/body/url, and other languages' texts: {"fr": {"headline", ...}}.
    locale: Mapped[str] = mapped_column(String(35), default="en")
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    # Languages the audience is restricted to (an edition's alert); None: every reader.
    locales: Mapped[list[str] | None] = mapped_column(JSON)
    # Apps the audience is restricted to (notifier/core/apps.py); None: every app.
    apps: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[AlertStatus] = mapped_column(
        EnumText(AlertStatus, 16), default=AlertStatus.SCHEDULED, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    created_by: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    test_only: Mapped[bool] = mapped_column(Boolean, default=False)

    hold_seconds: Mapped[int] = mapped_column(Integer, default=0)
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    event_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    send_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    planning_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    plan_progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Planner cursor: the highest device id already put into a batch.
    plan_cursor: Mapped[int] = mapped_column(BigId, default=0)
    audience: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    pruned: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    # Among ``suppressed``, by reason; among ``sent``, those delivered silently (quiet hours).
    suppressed_quiet_hours: Mapped[int] = mapped_column(Integer, default=0)
    suppressed_daily_cap: Mapped[int] = mapped_column(Integer, default=0)
    silent: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("idempotency_key", "created_by", name="uq_alerts_idempotency"),
    )


class Batch(Base):
    """Up to 500 devices of an alert, recorded as an id range so the task message stays tiny."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # Every device of a batch is of this app: it is sent with this app's credentials and quota.
    app: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    first_device_id: Mapped[int] = mapped_column(BigId)
    last_device_id: Mapped[int] = mapped_column(BigId)
    size: Mapped[int] = mapped_column(Integer)
    # Holds BatchStatus members; typed ``str`` only until notifier/pipeline/send.py assigns
    # members instead of literals, then ``Mapped[BatchStatus]`` like the other states.
    status: Mapped[BatchStatus] = mapped_column(
        EnumText(BatchStatus, 16), default=BatchStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("alert_id", "seq", name="uq_batches_alert_seq"),
        Index("ix_batches_status_lease", "status", "lease_expires_at"),
    )


# Room left in each page of ``deliveries`` (PostgreSQL): a delivery is inserted pending and
# updated once, about 60% wider (FCM's message name), and the update is HOT (stays on its page,
# writes no index entry) only if the wider version fits beside the old one. Migration 0005 sets
# the same on existing schemas; docs/performance.md has the measurements.
DELIVERIES_FILLFACTOR = 38


class Delivery(Base):
    """One device's outcome for one alert; its terminal state is what "nothing lost" checks."""

    __tablename__ = "deliveries"
    __table_args__ = {"postgresql_with": {"fillfactor": DELIVERIES_FILLFACTOR}}

    # No foreign key: PostgreSQL would check it for every row the planner inserts, in the
    # transaction that holds the alert locked anyway. ALERT_DELETE_TRIGGER keeps the cascade.
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigId, index=True)
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus, 16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    message_name: Mapped[str | None] = mapped_column(String(200))
    # Sent silently because it fell in the reader's quiet hours (mode ``silent``).
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# Deleting an alert deletes its deliveries (what ``ON DELETE CASCADE`` did before migration 0006
# dropped their foreign key), on both backends; the PostgreSQL function finds deliveries in the
# alert's own schema whatever the deleting session's search_path. Migration 0006 creates the same.
ALERT_DELETE_TRIGGER: dict[str, tuple[str, ...]] = {
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
for _dialect, _statements in ALERT_DELETE_TRIGGER.items():
    for _statement in _statements:
        event.listen(
            Base.metadata,
            "after_create",
            # DDL formats its text with %: the function's own % are doubled.
            DDL(_statement.replace("%", "%%")).execute_if(dialect=_dialect),
        )


class Outbox(Base):
    """Triggers written in the same transaction as the state they announce, dispatched after."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[TriggerKind] = mapped_column(EnumText(TriggerKind, 32))
    ref: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_outbox_pending", "dispatched_at", "due_at"),)


class ApiKey(Base):
    """An editor/ops/admin key, stored as a hash with a short visible prefix to identify it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TestDevice(Base):
    """An editor's own device that receives ``/v1/alerts/{id}/test`` sends."""

    __tablename__ = "test_devices"
    __test__ = False  # not a pytest class

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )


class Heartbeat(Base):
    """When a periodic job (the sweeper, a worker) last ran, for the ops view and /metrics."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Counter(Base):
    """A growing metric, shared by every process (see :mod:`notifier.core.counters`)."""

    __tablename__ = "counters"

    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    labels: Mapped[str] = mapped_column(String(300), primary_key=True, default="")
    value: Mapped[float] = mapped_column(Float, default=0.0)


class SendMinute(Base):
    """Device outcomes per minute, for the dashboard's throughput and error-rate charts."""

    __tablename__ = "send_minutes"

    minute: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
