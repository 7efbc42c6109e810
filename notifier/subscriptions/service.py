"""Readers' subscriptions: subscribe, unsubscribe, look up, and move a rotated token.

Plain functions over a SQLAlchemy session; the HTTP layer validates shapes, these enforce the
rules (known topics, one device per token, a pruned device revived by a fresh subscribe).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, any_, bindparam, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notifier.core.apps import DEFAULT_APP
from notifier.core.db import insert_ignoring_conflicts
from notifier.core.models import Device, Subscription, Topic, utcnow
from notifier.core.vocabulary import DeviceState, QuietMode, ReachState
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


def resolve_topics(session: Session | Connection, slugs: Iterable[str]) -> dict[str, int]:
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

    ``session`` may be a Core ``Connection`` in a transaction (the API's way): both statements
    are Core statements, and a Session's ORM execution path around them cost more CPU than
    their SQL (issue 12).
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
