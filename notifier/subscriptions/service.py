"""Readers' subscriptions: subscribe, unsubscribe, look up, and move a rotated token.

Plain functions over a SQLAlchemy session; the HTTP layer validates shapes, these enforce the
rules (known topics, one device per token, a pruned device revived by a fresh subscribe).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, any_, bindparam, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from notifier.core.apps import DEFAULT_APP
from notifier.core.db import insert_ignoring_conflicts
from notifier.core.models import Device, Subscription, Topic, utcnow
from notifier.core.vocabulary import DeviceState, Platform, QuietMode, ReachState
from notifier.subscriptions.topics import active_topics


class UnknownTopics(ValueError):
    """Topics that are not in the catalogue (or no longer active)."""

    def __init__(self, slugs: Iterable[str]) -> None:
        self.slugs = sorted(set(slugs))
        super().__init__(f"unknown topic(s): {', '.join(self.slugs)}")


class QuietHoursNeedAZone(ValueError):
    """Quiet hours are local times: a device with quiet hours must have a time zone."""

    def __init__(self) -> None:
        super().__init__("quiet_hours need the device's timezone; send timezone with them")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What a reader may learn about their own device. Never includes the token."""

    platform: str
    topics: list[str]
    locale: str | None
    timezone: str | None
    created_at: datetime
    last_seen_at: datetime
    quiet_hours: dict[str, str] | None = None
    max_per_day: int | None = None
    urgent_overrides: bool = True
    state: ReachState = ReachState.ACTIVE

    def effective_max_per_day(self, default_max_per_day: int | None) -> int | None:
        """The cap that applies: the reader's own, else the deployment's default (None: none).

        The send path applies the same rule (``notifier.pipeline.preferences.effective_cap``).
        """
        return self.max_per_day if self.max_per_day is not None else default_max_per_day

    def as_json(self, *, default_max_per_day: int | None) -> dict[str, object]:
        """The profile as the API answers it; ``default_max_per_day`` is
        ``NOTIFIER_DEFAULT_MAX_PER_DAY``, so an app can show the cap that applies."""
        return {
            "platform": self.platform,
            "topics": self.topics,
            "locale": self.locale,
            "timezone": self.timezone,
            "quiet_hours": self.quiet_hours,
            "max_per_day": self.max_per_day,
            "effective_max_per_day": self.effective_max_per_day(default_max_per_day),
            "urgent_overrides": self.urgent_overrides,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
        }


def preference_columns(changes: Mapping[str, object]) -> dict[str, object]:
    """Device columns for the preferences a request sets or clears (``None`` clears).

    ``quiet_hours`` is ``None`` or a mapping (or model) with ``start``, ``end`` (``HH:MM``) and
    ``mode``; clearing ``urgent_overrides`` restores its default (true).
    """
    columns: dict[str, object] = {}
    for name, value in changes.items():
        if name == "quiet_hours":
            if value is None:
                columns.update(quiet_start=None, quiet_end=None, quiet_mode=None)
            else:
                window = value if isinstance(value, Mapping) else vars(value)
                columns.update(
                    quiet_start=_minutes(str(window["start"])),
                    quiet_end=_minutes(str(window["end"])),
                    quiet_mode=QuietMode(str(window.get("mode") or QuietMode.SILENT)),
                )
        elif name == "urgent_overrides":
            columns[name] = True if value is None else bool(value)
        elif name in ("locale", "timezone", "max_per_day"):
            columns[name] = value
        else:
            raise ValueError(f"not a preference: {name}")
    return columns


def resolve_topics(session: Session | Connection | Engine, slugs: Iterable[str]) -> dict[str, int]:
    """Map slugs to topic ids, rejecting any the catalogue does not offer."""
    wanted = set(slugs)
    known = active_topics(session)
    unknown = wanted - known.keys()
    if unknown:
        raise UnknownTopics(unknown)
    return {slug: known[slug] for slug in wanted}


def subscribe(
    session: Session | Connection,
    *,
    token: str,
    platform: str,
    topics: list[str],
    locale: str | None = None,
    timezone: str | None = None,
    preferences: Mapping[str, object] | None = None,
    app: str = DEFAULT_APP,
) -> tuple[DeviceProfile, bool]:
    """Add ``topics`` to the device's subscriptions, creating the device if new.

    Returns the profile and whether the device was created. Two statements, whatever the case
    (the hottest write of the API, see docs/performance.md "Intake"): one upsert of the device,
    ``INSERT ... ON CONFLICT (token) DO UPDATE ... RETURNING``, which creates it or refreshes a
    known one atomically (so concurrent calls with the same token make one device, and a pruned
    token that comes back is live again) and returns its row with the topics it followed before;
    then one ``INSERT ... SELECT`` of the new subscriptions, skipping those it has. The device
    was created when its stored ``created_at`` is this call's ``now``: a known device keeps its
    own.

    ``preferences`` (the API's way) holds only the fields the request named: each is set, or
    cleared when ``None``; without it, a non-None ``locale`` or ``timezone`` is set (bulk
    import's and older callers' way). Raises :class:`QuietHoursNeedAZone` when the device would
    end up with quiet hours and no zone (the caller's transaction is then rolled back).
    ``app`` is the app that issued the token (checked by the caller): a token is a device of
    its app, and the same token string in another app is another device.

    ``session`` may be a Core ``Connection`` in a transaction: both statements are Core
    statements, and a Session's ORM execution path around them cost more CPU than their SQL
    (issue 12). The API calls :func:`subscribe_in`, which on PostgreSQL does the same in one
    statement of its own.
    """
    topic_ids = resolve_topics(session, topics)
    now = utcnow()
    if preferences is None:
        preferences = {
            k: v for k, v in (("locale", locale), ("timezone", timezone)) if v is not None
        }
    columns = preference_columns(preferences)
    values = {
        **_FRESH_DEVICE,
        **columns,
        "app": app,
        "token": token,
        "platform": platform,
        "state": DeviceState.ACTIVE,
        "created_at": now,
        "last_seen_at": now,
    }
    dialect = _dialect_of(session)
    upsert = _device_upsert(dialect, tuple(sorted(columns)))
    device = session.execute(upsert, values).one()
    created = device.created_at == now
    if device.quiet_start is not None and not device.timezone:
        raise QuietHoursNeedAZone()
    followed = set(device.followed.split(",")) if device.followed else set()
    if topic_ids.keys() - followed:
        session.execute(
            _add_subscriptions(dialect),
            {"device_id": device.id, "now": now, "topic_ids": list(topic_ids.values())},
        )
    return _profile(device, sorted(followed | topic_ids.keys())), created


def subscribe_in(
    engine: Engine,
    *,
    token: str,
    platform: str,
    topics: list[str],
    preferences: Mapping[str, object],
    app: str = DEFAULT_APP,
) -> tuple[DeviceProfile, bool]:
    """:func:`subscribe` (the API's way: ``preferences`` as the request named them) in a
    transaction of its own on ``engine``.

    On PostgreSQL through psycopg 3 (the driver the settings name) it is one statement without
    BEGIN and COMMIT (see :func:`_subscribe_alone`), unless the request could have to be
    rolled back.
    """
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        done = _subscribe_alone(
            engine, token=token, platform=platform, topics=topics, preferences=preferences, app=app
        )
        if done is not None:
            return done
    with engine.begin() as connection:
        return subscribe(
            connection,
            app=app,
            token=token,
            platform=platform,
            topics=topics,
            preferences=preferences,
        )


class _DeviceRow(NamedTuple):
    """The device columns the one-statement subscribe returns, in its order."""

    id: int
    platform: str
    locale: str | None
    timezone: str | None
    state: str
    created_at: datetime
    last_seen_at: datetime
    quiet_start: int | None
    quiet_end: int | None
    quiet_mode: str | None
    max_per_day: int | None
    urgent_overrides: bool
    followed: str | None


def _subscribe_alone(
    engine: Engine,
    *,
    token: str,
    platform: str,
    topics: list[str],
    preferences: Mapping[str, object],
    app: str,
) -> tuple[DeviceProfile, bool] | None:
    """The subscribe as one PostgreSQL statement that commits by itself, on the driver.

    What :func:`subscribe` does in two statements and a transaction, its SQLAlchemy execution
    (compiled-cache lookups, bind and result processing, the transaction's bookkeeping) and the
    BEGIN and COMMIT round trips cost more of the API's CPU than the SQL itself (issue 12): the
    device upsert and the insert of its new subscriptions are one data-modifying CTE, sent as
    text to psycopg (prepared by it after a few executions) in autocommit, which is atomic.

    The quiet-hours rule is in the statement: a known device's update is skipped when the
    result would have quiet hours and no zone, and the statement then returns no row (and
    inserts no subscription), so nothing is written and :class:`QuietHoursNeedAZone` raised, as
    when :func:`subscribe` rolls back. A request whose new device would break the rule (quiet
    hours without a zone, relying on the stored one) returns None: only a transaction can try
    it and roll the insert back, and the caller takes :func:`subscribe`'s path.
    """
    topic_ids = resolve_topics(engine, topics)
    columns = preference_columns(preferences)
    quiet_start = columns.get("quiet_start", _FRESH_DEVICE["quiet_start"])
    if quiet_start is not None and columns.get("timezone", _FRESH_DEVICE["timezone"]) is None:
        return None
    now = utcnow()
    # Only the columns the request names are parameters; the others are the statement's own.
    values = {
        **columns,
        "app": app,
        "token": token,
        "platform": Platform(platform).value,
        "now": now,
        "topic_ids": list(topic_ids.values()),
    }
    mode = columns.get("quiet_mode")
    if mode is not None:
        values["quiet_mode"] = QuietMode(str(mode)).value
    statement = _subscribe_statement(tuple(sorted(columns)))
    found = _execute_alone(engine, statement, values)
    if found is None:
        raise QuietHoursNeedAZone()
    row = _DeviceRow._make(found)
    device = row._replace(
        platform=Platform(row.platform),
        created_at=row.created_at.astimezone(UTC),
        last_seen_at=row.last_seen_at.astimezone(UTC),
        quiet_mode=None if row.quiet_mode is None else QuietMode(row.quiet_mode),
    )
    followed = set(device.followed.split(",")) if device.followed else set()
    return _profile(device, sorted(followed | topic_ids.keys())), device.created_at == now


def _execute_alone(engine: Engine, statement: str, parameters: dict[str, Any]) -> Any:
    """Run one statement in autocommit on a pooled psycopg connection; its first row or None.

    Straight on the driver's cursor, as SQLAlchemy would, minus its per-execution work: the
    engine's ``before_cursor_execute`` listeners still see it (statement counts in tests and
    benchmarks), a driver error is raised as SQLAlchemy's (so a database that went away is a
    503, as on every other route) without its parameters (a token), and a connection the error
    broke is invalidated with every pooled connection older than it, instead of going back to
    the pool.
    """
    with engine.connect() as connection:
        driver: Any = connection.connection.driver_connection
        try:
            driver.autocommit = True
            try:
                with driver.cursor() as cursor:
                    listeners = connection.dispatch.before_cursor_execute
                    if listeners:
                        listeners(connection, cursor, statement, parameters, None, False)
                    cursor.execute(statement, parameters)
                    return cursor.fetchone()
            finally:
                if not driver.broken and not driver.closed:
                    driver.autocommit = False
        except engine.dialect.loaded_dbapi.Error as exc:
            broken = bool(driver.broken or driver.closed)
            if broken:
                # What SQLAlchemy's own disconnect handling does on every other route: a server
                # that went away broke every pooled connection made before this one, so all of
                # them are replaced at their next checkout, not only this one (one 503 per
                # restart, not one per pooled connection). ``Pool._invalidate`` is the call it
                # makes there; it also invalidates this connection.
                engine.pool._invalidate(connection.connection, exc)
            raise DBAPIError.instance(
                statement,
                None,
                exc,
                engine.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=broken,
                dialect=engine.dialect,
            ) from exc


# The columns of ``_DeviceRow`` but ``followed``, as the statement returns them.
_RETURNED = _DeviceRow._fields[:-1]
_INSERTED = (
    "app",
    "token",
    "platform",
    "state",
    "locale",
    "timezone",
    "quiet_start",
    "quiet_end",
    "quiet_mode",
    "max_per_day",
    "urgent_overrides",
)


# The inserted columns every request gives; a new device's state is always active.
_GIVEN = frozenset({"app", "token", "platform"})


def _literal(name: str) -> str:
    """A new device's column the request does not give, as SQL (its value in ``_FRESH_DEVICE``)."""
    if name == "state":
        return f"'{DeviceState.ACTIVE.value}'"
    value = _FRESH_DEVICE[name]
    if value is None:
        return "NULL"
    if value is True:
        return "true"
    raise ValueError(f"no literal for {name}: {value!r}")


@functools.cache
def _subscribe_statement(updated: tuple[str, ...]) -> str:
    """The one-statement subscribe for the preference columns a request names (PostgreSQL).

    The device upsert is :func:`_device_upsert`'s, with the quiet-hours rule as the conflict
    update's condition (on the row as it would be); ``followed`` is read in the statement's
    snapshot, before its own insert of the subscriptions. Parameters: the device's columns,
    ``now`` and ``topic_ids``.
    """

    def after(name: str) -> str:
        return f"excluded.{name}" if name in updated else f"d.{name}"

    # A new device's columns: the request's, or the defaults as literals (fewer parameters to
    # send, for the common request that names no preference).
    inserted = [
        f"%({name})s" if name in updated or name in _GIVEN else _literal(name) for name in _INSERTED
    ]
    refreshed = ["platform", "last_seen_at", "state", *updated]
    sets = ", ".join(
        [f"{name} = excluded.{name}" for name in refreshed]
        + ["dead_reason = NULL", "dead_at = NULL"]
    )
    returned = ", ".join(f"d.{name}" for name in _RETURNED)
    # Only column names of this module's own go into the text; every value is a parameter.
    return (
        "WITH device AS ("  # noqa: S608
        f"INSERT INTO devices AS d ({', '.join(_INSERTED)}, created_at, last_seen_at) "
        f"VALUES ({', '.join(inserted)}, %(now)s, %(now)s) "
        f"ON CONFLICT (app, token) DO UPDATE SET {sets} "
        f"WHERE {after('quiet_start')} IS NULL OR {after('timezone')} IS NOT NULL "
        f"RETURNING {returned}, "
        "(SELECT string_agg(t.slug, ',') FROM subscriptions s JOIN topics t ON t.id = s.topic_id "
        "WHERE s.device_id = d.id) AS followed"
        "), added AS ("
        "INSERT INTO subscriptions (topic_id, device_id, created_at) "
        "SELECT t.id, device.id, %(now)s FROM device "
        "JOIN topics t ON t.id = ANY(%(topic_ids)s::integer[]) "
        "ON CONFLICT DO NOTHING"
        f") SELECT {', '.join(_DeviceRow._fields)} FROM device"
    )


def _dialect_of(session: Session | Connection) -> str:
    if isinstance(session, Connection):
        return session.dialect.name
    return session.get_bind().dialect.name


# A new device's preference columns before the request's own are applied.
_FRESH_DEVICE: dict[str, object] = {
    "locale": None,
    "timezone": None,
    "quiet_start": None,
    "quiet_end": None,
    "quiet_mode": None,
    "max_per_day": None,
    "urgent_overrides": True,
}


@functools.cache
def _device_upsert(dialect: str, updated: tuple[str, ...]) -> Any:
    """The device upsert, built once per backend and set of preference columns a request names.

    Built once, the statement's cache key is computed once too: building it per request cost
    more CPU than PostgreSQL spends running it. The returned ``followed`` column lists the
    device's topics as they were before this statement (its snapshot), comma-separated.
    """
    devices = Device.__table__
    subscriptions, topics = Subscription.__table__.alias("s"), Topic.__table__.alias("t")
    statement = _insert(dialect, devices)
    # RETURNING names columns unqualified on some backends, so the correlation is spelled out.
    followed = (
        select(func.aggregate_strings(topics.c.slug, ","))
        .select_from(subscriptions.join(topics, topics.c.id == subscriptions.c.topic_id))
        .where(subscriptions.c.device_id == literal_column("devices.id"))
        .scalar_subquery()
    )
    refreshed = {
        "platform": statement.excluded.platform,
        "last_seen_at": statement.excluded.last_seen_at,
        "state": statement.excluded.state,
        "dead_reason": None,
        "dead_at": None,
    }
    refreshed.update({name: statement.excluded[name] for name in updated})
    # Not the app and token (they are in the request) nor what only the pruning sets.
    returned = [c for c in devices.c if c.name not in ("app", "token", "dead_reason", "dead_at")]
    return statement.on_conflict_do_update(
        index_elements=["app", "token"], set_=refreshed
    ).returning(*returned, followed.label("followed"))


@functools.cache
def _add_subscriptions(dialect: str) -> Any:
    """``INSERT ... SELECT`` of a device's new topics (by id), skipping those it follows.

    PostgreSQL takes the ids as one array (``= ANY(%(topic_ids)s)``): an expanding ``IN``
    is rewritten for its number of ids on every execution, which cost more CPU than the insert.
    """
    subscriptions, topics = Subscription.__table__, Topic.__table__
    if dialect == "postgresql":
        ids = bindparam("topic_ids", type_=postgresql.ARRAY(topics.c.id.type))
        wanted = topics.c.id == any_(ids)
    else:
        wanted = topics.c.id.in_(bindparam("topic_ids", expanding=True))
    rows = select(
        topics.c.id,
        bindparam("device_id", type_=subscriptions.c.device_id.type),
        bindparam("now", type_=subscriptions.c.created_at.type),
    ).where(wanted)
    return (
        _insert(dialect, subscriptions)
        .from_select(["topic_id", "device_id", "created_at"], rows)
        .on_conflict_do_nothing()
    )


def _insert(dialect: str, table: Any) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def find_device(session: Session, token: str, app: str = DEFAULT_APP) -> Device | None:
    """The device of ``token`` in ``app``."""
    return session.scalar(select(Device).where(Device.app == app, Device.token == token))


def unsubscribe(
    session: Session, *, token: str, topics: list[str] | None, app: str = DEFAULT_APP
) -> None:
    """Remove some topics, or forget the device entirely when ``topics`` is None.

    Forgetting deletes the token (it is personal data); unknown tokens are a silent no-op so the
    answer never reveals whether a token was registered.
    """
    topic_ids = resolve_topics(session, topics) if topics is not None else None
    device = find_device(session, token, app)
    if device is None:
        return
    if topic_ids is None:
        session.delete(device)
        return
    session.execute(
        delete(Subscription).where(
            Subscription.device_id == device.id, Subscription.topic_id.in_(topic_ids.values())
        )
    )


def lookup(session: Session, token: str, app: str = DEFAULT_APP) -> DeviceProfile | None:
    device = find_device(session, token, app)
    return None if device is None else profile(session, device)


def rotate_token(
    session: Session, *, old_token: str, new_token: str, app: str = DEFAULT_APP
) -> DeviceProfile | None:
    """Move a rotated token's subscriptions to its new token (both of ``app``).

    If the new token is already registered (the app subscribed it before reporting the rotation),
    the old device's topics are merged into it and the old device is removed.
    """
    old = find_device(session, old_token, app)
    if old is None:
        return None
    if old_token == new_token:
        return profile(session, old)
    new = find_device(session, new_token, app)
    now = utcnow()
    if new is None:
        old.token, old.last_seen_at = new_token, now
        old.state, old.dead_reason, old.dead_at = DeviceState.ACTIVE, None, None
        session.flush()
        return profile(session, old)
    topic_ids = session.scalars(
        select(Subscription.topic_id).where(Subscription.device_id == old.id)
    ).all()
    insert_ignoring_conflicts(
        session,
        Subscription.__table__,
        [{"topic_id": tid, "device_id": new.id, "created_at": now} for tid in topic_ids],
    )
    new.locale = new.locale or old.locale
    new.timezone = new.timezone or old.timezone
    if new.quiet_start is None and new.timezone == old.timezone:
        new.quiet_start, new.quiet_end = old.quiet_start, old.quiet_end
        new.quiet_mode = old.quiet_mode
    new.max_per_day = new.max_per_day if new.max_per_day is not None else old.max_per_day
    new.last_seen_at = now
    new.state, new.dead_reason, new.dead_at = DeviceState.ACTIVE, None, None
    session.delete(old)
    session.flush()
    return profile(session, new)


def profile(session: Session, device: Device) -> DeviceProfile:
    slugs = session.scalars(
        select(Topic.slug)
        .join(Subscription, Subscription.topic_id == Topic.id)
        .where(Subscription.device_id == device.id)
        .order_by(Topic.slug)
    ).all()
    return _profile(device, list(slugs))


def _profile(device: Any, slugs: list[str]) -> DeviceProfile:
    """The profile of a device, from its ORM object or a row with the same columns."""
    quiet = None
    if device.quiet_start is not None and device.quiet_end is not None:
        quiet = {
            "start": _clock(device.quiet_start),
            "end": _clock(device.quiet_end),
            "mode": device.quiet_mode or QuietMode.SILENT,
        }
    return DeviceProfile(
        platform=device.platform,
        topics=slugs,
        locale=device.locale,
        timezone=device.timezone,
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
        quiet_hours=quiet,
        max_per_day=device.max_per_day,
        urgent_overrides=device.urgent_overrides,
        state=ReachState.ACTIVE if device.state == DeviceState.ACTIVE else ReachState.UNREACHABLE,
    )
