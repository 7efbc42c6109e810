"""Editors' article API: recent CMS articles with their alerts, and an alert made from one."""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import AfterValidator, Field, field_validator
from sqlalchemy.exc import IntegrityError

from notifier.alerts import articles as listing
from notifier.alerts import from_article
from notifier.alerts.service import alert_view
from notifier.core.db import transaction
from notifier.core.vocabulary import Urgency
from notifier.http import context, idempotency
from notifier.http.alerts import EditorUrl, Translation
from notifier.http.apps import apps_of
from notifier.http.auth import current_principal, require_role
from notifier.http.problems import Problem
from notifier.http.requests import json_body
from notifier.subscriptions.requests import AppId, Locale, Slug, Strict, not_blank, stored_text
from notifier.subscriptions.service import UnknownTopics

bp = Blueprint("articles", __name__)


class ArticleAlertRequest(Strict):
    """Changes to the article's text; a field left out is taken from the article.

    The limits are those of ``POST /v1/alerts``: what an editor types is checked the same way
    wherever it is typed. ``body`` or ``image_url`` sent as null means "none".
    """

    headline: Annotated[str, stored_text(200), AfterValidator(not_blank)] | None = None
    body: Annotated[str, stored_text(1000)] | None = None
    url: EditorUrl | None = None
    image_url: EditorUrl | None = None
    topics: Annotated[list[Slug], Field(min_length=1, max_length=50)] | None = None
    hold_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = None
    ttl_seconds: Annotated[int, Field(ge=60, le=2_419_200)] | None = None
    priority: Literal["high", "normal"] = "high"
    # As in POST /v1/alerts: an article's stored text has none of these.
    urgency: Literal["normal", "urgent"] = "normal"
    locale: Locale | None = None
    translations: Annotated[dict[Locale, Translation], Field(max_length=20)] | None = None
    locales: Annotated[list[Locale], Field(min_length=1, max_length=20)] | None = None
    apps: Annotated[list[AppId], Field(min_length=1, max_length=50)] | None = None

    @field_validator("headline", "url", "topics", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "the article's"; null would read as "none", which these cannot be.
        if value is None:
            raise ValueError("must not be null; leave it out to keep the article's")
        return value

    def changes(self) -> from_article.ArticleAlertChanges:
        given = self.model_fields_set
        inherit = from_article.FROM_ARTICLE

        def url(value: object) -> str | None:
            return str(value) if value is not None else None

        return from_article.ArticleAlertChanges(
            headline=self.headline if self.headline is not None else inherit,
            body=self.body if "body" in given else inherit,
            url=str(self.url) if self.url is not None else inherit,
            image_url=url(self.image_url) if "image_url" in given else inherit,
            topics=tuple(self.topics) if self.topics is not None else inherit,
            hold_seconds=self.hold_seconds,
            ttl_seconds=self.ttl_seconds,
            priority=self.priority,
            urgency=Urgency(self.urgency),
            locale=self.locale,
            translations={tag: text.as_stored() for tag, text in (self.translations or {}).items()},
            locales=tuple(self.locales) if self.locales else None,
            apps=apps_of(self.apps),
        )


def _read_request() -> ArticleAlertRequest:
    """The body's changes; no body at all (no type, no length) means "the article as it is"."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not request.content_type and not request.content_length and not chunked:
        return ArticleAlertRequest()
    return json_body(ArticleAlertRequest)


def _article_not_found() -> Problem:
    return Problem(404, "Not Found", "No such article: the CMS has not sent it.")


@bp.get("/v1/articles")
@require_role("editor")
def list_articles() -> Response:
    try:
        wanted = int(request.args.get("limit", str(listing.DEFAULT_PAGE)))
    except ValueError:
        raise Problem(400, "Bad limit", "limit must be a whole number.") from None
    limit = min(listing.MAX_PAGE, max(1, wanted))
    before = request.args.get("before")
    if before is not None and not listing.is_article_id(before):
        raise Problem(400, "Bad cursor", "before must be the id of a listed article.")
    try:
        with transaction(context.runtime().sessions) as session:
            page = listing.recent_articles(session, limit=limit, before=before)
            articles = [listing.article_view(a, alert) for a, alert in page.rows]
    except listing.CursorNotFound:
        # A well-formed cursor naming no article: the article it names is what is missing.
        raise Problem(404, "Not Found", "before names no article.") from None
    return jsonify({"articles": articles, "next": page.next})


@bp.post("/v1/articles/<path:article_id>/alert")
@require_role("editor")
def create_alert(article_id: str) -> tuple[Response, int]:
    if not listing.is_article_id(article_id):
        raise _article_not_found()
    req = _read_request()
    principal = current_principal()
    owner = str(principal.key_id)
    key = idempotency.idempotency_key()
    # The article is part of the request: one Idempotency-Key for two articles is a reuse (422).
    requested = {"article_id": article_id, **req.model_dump(mode="json", exclude_unset=True)}
    body_hash = idempotency.request_hash(requested)
    runtime = context.runtime()
    requester = from_article.Requester(owner, key, body_hash)
    try:
        with transaction(runtime.sessions) as session:
            existing = idempotency.alert_by_key(session, key, owner)
            if existing is not None:
                return idempotency.replay(existing, body_hash)
            alert = from_article.alert_from_article(
                session,
                article_id,
                req.changes(),
                requester,
                default_hold=runtime.settings.hold_seconds,
                default_ttl=runtime.settings.default_ttl_seconds,
                default_locale=runtime.settings.default_locale,
            )
            view = alert_view(alert)
    except from_article.ArticleNotFound:
        raise _article_not_found() from None
    except from_article.ArticleHasAlert as exc:
        # The alert may be this very request's, made by a retry with the same Idempotency-Key
        # that held the article first: that is answered as a replay, never as a conflict.
        return _replay_or_conflict(key, owner, body_hash, exc.alert_id, exc.status)
    except from_article.ArticleUnpublished:
        raise Problem(
            409, "Article unpublished", "The article is off the site; it cannot be alerted."
        ) from None
    except from_article.NoTopics:
        raise Problem(
            422, "No topics", "The article has no topics: choose at least one for its alert."
        ) from None
    except UnknownTopics as exc:
        raise Problem(422, "Unknown topic", str(exc), unknown_topics=exc.slugs) from None
    except IntegrityError:
        # A concurrent request committed first (the unique article_id or Idempotency-Key
        # stopped this one): a replay if it was this request, else the article's second alert.
        with transaction(runtime.sessions) as session:
            winner = from_article.alert_of_article(session, article_id)
            won = (winner.id, str(winner.status)) if winner is not None else None
        if won is None:
            return _replay_or_conflict(key, owner, body_hash, None, None)
        return _replay_or_conflict(key, owner, body_hash, *won)
    return jsonify(view), 201


def _replay_or_conflict(
    key: str | None, owner: str, body_hash: str, alert_id: str | None, status: str | None
) -> tuple[Response, int]:
    """Answer a request that lost to another: as its replay when the key says it is the same."""
    with transaction(context.runtime().sessions) as session:
        existing = idempotency.alert_by_key(session, key, owner)
        if existing is not None:
            return idempotency.replay(existing, body_hash)
    if alert_id is None or status is None:
        raise Problem(409, "Conflict", "A concurrent request changed this article; try again.")
    raise Problem(
        409,
        "Article already alerted",
        f"The article already has its alert ({status}); an article gets one alert.",
        alert_id=alert_id,
        alert_status=status,
    )
