"""Readers' subscriptions: subscribe, unsubscribe, look up, and move a rotated token.

Plain functions over a SQLAlchemy session; the HTTP layer validates shapes, these enforce the
rules (known topics, one device per token, a pruned device revived by a fresh subscribe).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from notifier.core.db import dialect_insert, insert_ignoring_conflicts
from notifier.core.models import Device, Subscription, Topic, utcnow
from notifier.core.vocabulary import DeviceState
from notifier.subscriptions.topics import active_topics


class UnknownTopics(ValueError):
    """Topics that are not in the catalogue (or no longer active)."""

    def __init__(self, slugs: Iterable[str]) -> None:
        self.slugs = sorted(set(slugs))
        super().__init__(f"unknown topic(s): {', '.join(self.slugs)}")


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What a reader may learn about their own device. Never includes the token."""

    platform: str
    topics: list[str]
    locale: str | None
    timezone: str | None
    created_at: datetime
    last_seen_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "topics": self.topics,
            "locale": self.locale,
            "timezone": self.timezone,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
        }


def resolve_topics(session: Session, slugs: Iterable[str]) -> dict[str, int]:
    """Map slugs to topic ids, rejecting any the catalogue does not offer."""
    wanted = set(slugs)
    known = active_topics(session)
    unknown = wanted - known.keys()
    if unknown:
        raise UnknownTopics(unknown)
    return {slug: known[slug] for slug in wanted}


def subscribe(
    session: Session,
    *,
    token: str,
    platform: str,
    topics: list[str],
    locale: str | None = None,
    timezone: str | None = None,
) -> tuple[DeviceProfile, bool]:
    """Add ``topics`` to the device's subscriptions, creating the device if new.

    Returns the profile and whether the device was created. One INSERT ... ON CONFLICT DO NOTHING
    decides that atomically, so concurrent calls with the same token make one device; a known
    token is then refreshed with one UPDATE (a pruned token that comes back is live again).
    """
    topic_ids = resolve_topics(session, topics)
    now = utcnow()
    device_id = session.scalar(
        dialect_insert(session, Device)
        .values(
            token=token,
            platform=platform,
            locale=locale,
            timezone=timezone,
            state=DeviceState.ACTIVE,
            created_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_nothing(index_elements=["token"])
        .returning(Device.id)
    )
    created = device_id is not None
    if not created:
        changes: dict[str, object] = {
            "platform": platform,
            "last_seen_at": now,
            "state": DeviceState.ACTIVE,
            "dead_reason": None,
            "dead_at": None,
        }
        if locale is not None:
            changes["locale"] = locale
        if timezone is not None:
            changes["timezone"] = timezone
        device_id = session.scalar(
            update(Device).where(Device.token == token).values(**changes).returning(Device.id)
        )
    insert_ignoring_conflicts(
        session,
        Subscription.__table__,
        [
            {"topic_id": tid, "device_id": device_id, "created_at": now}
            for tid in topic_ids.values()
        ],
    )
    if created:  # nothing to read back: the device is exactly what was just written
        return DeviceProfile(platform, sorted(topic_ids), locale, timezone, now, now), True
    # get_one raises NoResultFound instead of returning None: a check that survives `python -O`.
    device = session.get_one(Device, device_id, populate_existing=True)
    return profile(session, device), False


def find_device(session: Session, token: str) -> Device | None:
    return session.scalar(select(Device).where(Device.token == token))


def unsubscribe(session: Session, *, token: str, topics: list[str] | None) -> None:
    """Remove some topics, or forget the device entirely when ``topics`` is None.

    Forgetting deletes the token (it is personal data); unknown tokens are a silent no-op so the
    answer never reveals whether a token was registered.
    """
    topic_ids = resolve_topics(session, topics) if topics is not None else None
    device = find_device(session, token)
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


def lookup(session: Session, token: str) -> DeviceProfile | None:
    device = find_device(session, token)
    return None if device is None else profile(session, device)


def rotate_token(session: Session, *, old_token: str, new_token: str) -> DeviceProfile | None:
    """Move a rotated token's subscriptions to its new token.

    If the new token is already registered (the app subscribed it before reporting the rotation),
    the old device's topics are merged into it and the old device is removed.
    """
    old = find_device(session, old_token)
    if old is None:
        return None
    if old_token == new_token:
        return profile(session, old)
    new = find_device(session, new_token)
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
    return DeviceProfile(
        platform=device.platform,
        topics=list(slugs),
        locale=device.locale,
        timezone=device.timezone,
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
    )
