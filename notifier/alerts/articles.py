"""Recent CMS articles as editors see them: newest first, each with its alert if it has one.

Editors read this list to spot a story the CMS published as ordinary that is in fact breaking
(:mod:`notifier.alerts.from_article` then makes its alert). "Newest" is the CMS's publication
time, or the time the article was last stored when the CMS sent none, so an article is listed
where a reader of the site would have met it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from notifier.alerts.opens import open_rate
from notifier.alerts.service import pending_count
from notifier.core.models import Alert, Article

# The same bounds as the alert list, so a client pages both the same way.
DEFAULT_PAGE, MAX_PAGE = 50, 200
# What an article id may be (see intake's ArticleId): a cursor or path outside it names nothing,
# and PostgreSQL refuses NUL in text, so such a value must never reach a query.
MAX_ARTICLE_ID = 200


class CursorNotFound(LookupError):
    """The ``before`` cursor names no stored article."""


def newest_first_key() -> ColumnElement[datetime]:
    """When the article appeared: the CMS's publication time, else when it was last stored."""
    return func.coalesce(Article.published_at, Article.updated_at)


def is_article_id(value: str) -> bool:
    """Whether ``value`` could be a stored article id (1-200 characters, no control character)."""
    return 0 < len(value) <= MAX_ARTICLE_ID and not any(
        ord(c) < 0x20 or ord(c) == 0x7F for c in value
    )


@dataclass(frozen=True, slots=True)
class ArticlePage:
    """One page of articles with their alerts, and the cursor of the next page (None at the end)."""

    rows: list[tuple[Article, Alert | None]]
    next: str | None


def recent_articles(session: Session, *, limit: int, before: str | None = None) -> ArticlePage:
    """Articles newest first, ``limit`` at most, after the article ``before`` (keyset paging).

    Ties on the time are broken by id, so every article is listed exactly once across pages
    while the list does not change; raises :class:`CursorNotFound` for an unknown ``before``.
    """
    newest = newest_first_key()
    query = (
        select(Article, Alert)
        .outerjoin(Alert, Alert.article_id == Article.id)
        .order_by(newest.desc(), Article.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        anchor = session.get(Article, before) if is_article_id(before) else None
        if anchor is None:
            raise CursorNotFound(before)
        at = anchor.published_at or anchor.updated_at
        query = query.where((newest < at) | ((newest == at) & (Article.id < anchor.id)))
    rows: list[tuple[Article, Alert | None]] = [(a, b) for a, b in session.execute(query)]
    page = rows[:limit]
    return ArticlePage(page, page[-1][0].id if len(rows) > limit else None)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def alert_summary(alert: Alert) -> dict[str, object]:
    """What the article list says about an article's alert: enough to show where it stands."""
    return {
        "id": alert.id,
        "status": alert.status,
        "source": alert.source,
        "send_at": _iso(alert.send_at),
        "counts": {
            "audience": alert.audience,
            "sent": alert.sent,
            "failed": alert.failed,
            "pruned": alert.pruned,
            "cancelled": alert.cancelled,
            "pending": pending_count(alert),
        },
        "opens": alert.opens,
        "open_rate": open_rate(alert.opens, alert.sent),
    }


def article_view(article: Article, alert: Alert | None) -> dict[str, object]:
    """The public JSON shape of an article (``GET /v1/articles``)."""
    return {
        "id": article.id,
        "headline": article.headline,
        "summary": article.summary,
        "url": article.url,
        "image_url": article.image_url,
        "topics": article.topics,
        "breaking": article.breaking,
        "locale": article.locale,
        "published_at": _iso(article.published_at),
        "unpublished_at": _iso(article.unpublished_at),
        "updated_at": _iso(article.updated_at),
        "alert": alert_summary(alert) if alert is not None else None,
    }
