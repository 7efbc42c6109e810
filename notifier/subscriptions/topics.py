"""The topic catalogue: read from ``config/topics.toml`` and mirrored into the ``topics`` table."""

from __future__ import annotations

import time
import tomllib
import weakref
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from notifier.core.models import Topic
from notifier.core.patterns import TOPIC_SLUG

SLUG = TOPIC_SLUG


class CatalogueError(ValueError):
    """The catalogue file is missing or malformed; start-up stops with this message."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    slug: str
    name: str
    alerting: bool = False


def load_catalogue(path: Path) -> list[TopicSpec]:
    """Parse and validate the catalogue; every problem names the file and the entry."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"topic catalogue not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    entries = raw.get("topic")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path}: expected one or more [[topic]] tables")
    specs: list[TopicSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: topic #{index}"
        if not isinstance(entry, dict) or set(entry) - {"slug", "name", "alerting"}:
            raise CatalogueError(f"{where}: only slug, name and alerting are allowed")
        slug, name = entry.get("slug"), entry.get("name")
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise CatalogueError(f"{where}: slug must match {SLUG.pattern}")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise CatalogueError(f"{where}: name must be a non-empty string")
        alerting = entry.get("alerting", False)
        if not isinstance(alerting, bool):
            raise CatalogueError(f"{where}: alerting must be true or false")
        if slug in seen:
            raise CatalogueError(f"{where}: duplicate slug {slug!r}")
        seen.add(slug)
        specs.append(TopicSpec(slug=slug, name=name.strip(), alerting=alerting))
    return specs


def sync_topics(session: Session, catalogue: list[TopicSpec]) -> None:
    """Insert new topics, rename changed ones, and deactivate those no longer listed.

    Topics are never deleted: subscriptions and past alerts still refer to them.
    """
    existing = {t.slug: t for t in session.scalars(select(Topic))}
    for spec in catalogue:
        topic = existing.get(spec.slug)
        if topic is None:
            session.add(Topic(slug=spec.slug, name=spec.name, active=True))
        elif topic.name != spec.name or not topic.active:
            topic.name, topic.active = spec.name, True
    listed = [spec.slug for spec in catalogue]
    session.execute(update(Topic).where(Topic.slug.not_in(listed)).values(active=False))
    session.flush()
    _cache.clear()


# The catalogue changes only when an operator syncs it (at start-up), yet every subscribe needs
# it: each process keeps it for a short while instead of asking the database every request.
# Keyed by engine (one per database in a process): rendering its URL as the key cost more than
# the lookup.
_CACHE_SECONDS = 30.0
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, int]]] = (
    weakref.WeakKeyDictionary()
)


def active_topics(session: Session | Connection | Engine) -> dict[str, int]:
    """Slug -> id of every topic readers may subscribe to (cached per engine, 30 s).

    Given an engine, a miss reads on a connection of its own.
    """
    if isinstance(session, Engine):
        key = session
    else:
        key = session.engine if isinstance(session, Connection) else session.get_bind().engine
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < _CACHE_SECONDS:
        return hit[1]
    query = select(Topic.slug, Topic.id).where(Topic.active.is_(True))
    if isinstance(session, Engine):
        with session.connect() as connection:
            topics = {slug: topic_id for slug, topic_id in connection.execute(query)}
    else:
        topics = {slug: topic_id for slug, topic_id in session.execute(query)}
    _cache[key] = (time.monotonic(), topics)
    return topics
