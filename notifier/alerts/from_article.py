"""An editor's alert for a stored CMS article: the article's text, with the editor's changes.

The alert is linked to its article exactly as the webhook links one (``alerts.article_id``), so
what holds for a CMS alert holds for this one: a later ``article.unpublished`` cancels it,
``article.published`` with ``breaking: true`` for the same story finds it and makes no second
one, and the unique ``article_id`` lets only one of two concurrent requests create it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.models import Alert, Article, utcnow
from notifier.core.vocabulary import Urgency
from notifier.subscriptions.service import resolve_topics


class _FromArticle(Enum):
    ARTICLE = "article"


# A field left at this takes the article's value; ``None`` (where allowed) means "none at all".
FROM_ARTICLE = _FromArticle.ARTICLE
Inherited = Literal[_FromArticle.ARTICLE]


class ArticleNotFound(LookupError):
    """No stored article has this id (the CMS never sent it)."""


class ArticleUnpublished(ValueError):
    """The article is off the site: alerting readers to a pulled story is what unpublish stops."""


class ArticleHasAlert(ValueError):
    """The article already has its one alert (of any status), named here by id and status.

    Plain values, not the row: the caller answers after the transaction has rolled back.
    """

    def __init__(self, alert: Alert) -> None:
        super().__init__(f"the article already has alert {alert.id} ({alert.status})")
        self.alert_id, self.status = alert.id, str(alert.status)


class NoTopics(ValueError):
    """The article has no topics and the editor chose none, so the alert would reach nobody."""


@dataclass(frozen=True, slots=True)
class ArticleAlertChanges:
    """What the editor changed from the article; anything left as ``FROM_ARTICLE`` is inherited.

    Topics the editor names must be in the catalogue; the article's own topics are used as the
    webhook would use them.
    """

    headline: str | Inherited = FROM_ARTICLE
    body: str | Inherited | None = FROM_ARTICLE  # the article's summary, as the webhook sends it
    url: str | Inherited = FROM_ARTICLE
    image_url: str | Inherited | None = FROM_ARTICLE
    topics: tuple[str, ...] | Inherited = FROM_ARTICLE
    hold_seconds: int | None = None
    ttl_seconds: int | None = None
    priority: str = "high"
    # Not in an article's stored text: the editor's choices, as in POST /v1/alerts.
    urgency: Urgency = Urgency.NORMAL
    locale: str | None = None
    translations: dict[str, dict[str, str]] = field(default_factory=dict)
    locales: tuple[str, ...] | None = None
    # Apps the alert is restricted to (checked by the caller); None: every app.
    apps: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, and the idempotency record kept with the alert (see ``POST /v1/alerts``)."""

    created_by: str
    idempotency_key: str | None = None
    request_hash: str | None = None


def alert_from_article(
    session: Session,
    article_id: str,
    changes: ArticleAlertChanges,
    requester: Requester,
    *,
    default_hold: int,
    default_ttl: int,
    default_locale: str = "en",
    now: datetime | None = None,
) -> Alert:
    """Create the article's alert and its trigger in ``session``; the caller commits.

    The article row is locked first, as the webhook's intake locks it, so an editor's request
    and a concurrent ``article.unpublished`` or breaking ``article.published`` are decided one
    after the other: whichever comes second sees the first's alert or unpublication.
    """
    article = session.get(Article, article_id, with_for_update=True)
    if article is None:
        raise ArticleNotFound(article_id)
    existing = session.scalar(select(Alert).where(Alert.article_id == article_id).with_for_update())
    if existing is not None:
        raise ArticleHasAlert(existing)
    if article.unpublished_at is not None:
        raise ArticleUnpublished(article_id)
    if changes.topics is FROM_ARTICLE:
        topics = tuple(article.topics)
    else:
        resolve_topics(session, changes.topics)
        topics = changes.topics
    if not topics:
        raise NoTopics(article_id)
    draft = AlertDraft(
        headline=article.headline if changes.headline is FROM_ARTICLE else changes.headline,
        body=article.summary if changes.body is FROM_ARTICLE else changes.body,
        url=article.url if changes.url is FROM_ARTICLE else changes.url,
        image_url=article.image_url if changes.image_url is FROM_ARTICLE else changes.image_url,
        topics=topics,
        hold_seconds=changes.hold_seconds,
        ttl_seconds=changes.ttl_seconds,
        priority=changes.priority,
        urgency=changes.urgency,
        locale=changes.locale,
        translations=dict(changes.translations),
        locales=changes.locales,
        apps=changes.apps,
        article_id=article.id,
        source="editor",
        created_by=requester.created_by,
        idempotency_key=requester.idempotency_key,
        request_hash=requester.request_hash,
    )
    return create_alert(
        session,
        draft,
        default_hold=default_hold,
        default_ttl=default_ttl,
        default_locale=default_locale,
        now=now or utcnow(),
    )


def alert_of_article(session: Session, article_id: str) -> Alert | None:
    """The article's alert, if it has one."""
    return session.scalar(select(Alert).where(Alert.article_id == article_id))
