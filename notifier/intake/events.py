"""The CMS event intake: what an article event means for its alert, decided and recorded once.

Every delivery the API answers 2xx leaves a ``webhook_events`` row with its decision, written in the
caller's transaction with the article, the alert and the alert's outbox trigger. That row is what
makes the promise "an alert or a recorded decision not to alert" checkable, and what a redelivery
of the same ``webhook-id`` is answered from. One alert per article (``alerts.article_id`` is
unique) stops a CMS retry that carries a new ``webhook-id`` from alerting twice.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
)
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from notifier.alerts.service import (
    AlertDraft,
    alert_view,
    cancel_alert,
    create_alert,
    create_alert_on,
)
from notifier.core.apps import DEFAULT_APP
from notifier.core.db import transaction
from notifier.core.models import Alert, Article, WebhookEvent, utcnow
from notifier.core.outbox import CoreWork, Publisher, core_transaction
from notifier.core.patterns import LOCALE_MAX_LENGTH, LOCALE_PATTERN, TOPIC_SLUG_PATTERN
from notifier.core.vocabulary import LIVE_ALERT_STATUSES, AlertStatus, Urgency
from notifier.subscriptions.requests import WHITESPACE, AppId, not_blank, stored_text

log = logging.getLogger(__name__)

PUBLISHED, UPDATED, UNPUBLISHED = "article.published", "article.updated", "article.unpublished"
MAX_TOPICS = 100


class Decision(StrEnum):
    """What an event led to; stored with the event and returned to the CMS."""

    ALERT_CREATED = "alert_created"
    DUPLICATE = "duplicate"  # the article already has an alert
    NOT_BREAKING = "not_breaking"
    ALERT_UPDATED = "alert_updated"
    ALERT_NOT_EDITABLE = "alert_not_editable"  # its hold window is over
    ALERT_CANCELLED = "alert_cancelled"
    ALERT_NOT_CANCELLABLE = "alert_not_cancellable"  # already sent, expired or failed
    NO_ALERT = "no_alert"  # unpublished, and it never had an alert
    ARTICLE_UNPUBLISHED = "article_unpublished"  # updated while off the site: no alert
    STALE_REVISION = "stale_revision"
    IGNORED = "ignored"  # an event type this service does not handle


# Decisions that announce an alert for the article answer 202 (Accepted: the fan-out is
# scheduled); a retry of such a delivery must get the same answer. Everything else answers 200.
_ANNOUNCES_ALERT = frozenset({Decision.ALERT_CREATED, Decision.DUPLICATE})


# --- The event schema -------------------------------------------------------------------------
# Known event types are validated strictly: a wrong type in a known field is a 422, so a CMS bug is
# seen at once instead of becoming a silent "not breaking". Fields this service does not know are
# ignored, not rejected: CMSes add fields over time, and refusing them would turn a CMS upgrade
# into every event failing. They are never stored, so ignoring them assigns nothing.


def _numeric_id_as_text(value: object) -> object:
    # Many CMSes number their articles; "id": 123 and "id": "123" are the same article.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# RFC 3339 section 5.6 ``date-time``, which is what JSON Schema's ``format: date-time`` means: a
# string with a UTC offset. Pydantic's lax datetime would also take Unix seconds (0, 1.5) and
# bare dates, and the CMS would never learn that its timestamps are read as something else.
# A leap second (:60), which Python cannot represent, is refused like any impossible time.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> object:
    if value is None:
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-01-31T09:30:00Z")
    date, hours_minutes, seconds, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # Python keeps microseconds, six digits
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{date}T{hours_minutes}:{seconds}{fraction}{offset}")
    except ValueError:
        raise ValueError("is not a real date and time") from None


ArticleId = Annotated[
    str,
    BeforeValidator(_numeric_id_as_text),
    StringConstraints(strict=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
# No control characters or whitespace, the whitespace spelled out (see WHITESPACE) so that the
# server and the description's regex dialect agree on every character.
WEB_URL = "^https?://[^\\x00-\\x20\\x7f-\\x9f" + WHITESPACE + "]+$"
WebUrl = Annotated[str, StringConstraints(strict=True, max_length=2048, pattern=WEB_URL)]
Slug = Annotated[str, StringConstraints(strict=True, pattern=TOPIC_SLUG_PATTERN)]
Locale = Annotated[
    str,
    StringConstraints(strict=True, max_length=LOCALE_MAX_LENGTH, pattern=LOCALE_PATTERN),
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ArticleTranslation(_Lenient):
    """The article in another language, for readers whose locale matches."""

    headline: Annotated[str, stored_text(500), AfterValidator(not_blank)]
    summary: Annotated[str, stored_text(4000)] | None = None
    url: WebUrl | None = None


class ArticleData(_Lenient):
    """An article as the CMS describes it in ``article.published`` and ``article.updated``."""

    id: ArticleId
    url: WebUrl
    headline: Annotated[str, stored_text(500), AfterValidator(not_blank)]
    summary: Annotated[str, stored_text(4000)] | None = None
    topics: Annotated[list[Slug], Field(max_length=MAX_TOPICS)]
    breaking: StrictBool
    published_at: Annotated[datetime | None, BeforeValidator(_rfc3339)] = None
    image_url: WebUrl | None = None
    locale: Locale | None = None
    revision: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | None = None
    # Readers' preferences: an urgent article comes through quiet hours and the daily cap.
    urgent: StrictBool = False
    translations: Annotated[dict[Locale, ArticleTranslation], Field(max_length=20)] | None = None
    # Only readers of these languages (an edition's article); None: every reader.
    locales: Annotated[list[Locale], Field(min_length=1, max_length=20)] | None = None
    # Only devices of these apps (notifier/core/apps.py); None: every app.
    apps: Annotated[list[AppId], Field(min_length=1, max_length=50)] | None = None


class ArticleRef(_Lenient):
    """``article.unpublished`` needs only the id; whatever else the CMS sends is not used."""

    id: ArticleId


class ArticleChanged(_Lenient):
    type: Literal["article.published", "article.updated"]
    data: ArticleData


class ArticleUnpublished(_Lenient):
    type: Literal["article.unpublished"]
    data: ArticleRef


class _Envelope(_Lenient):
    type: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    ]


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    """An event of a type this service does not handle (a CMS sends more than we need)."""

    type: str


ArticleEvent = ArticleChanged | ArticleUnpublished
_KNOWN_EVENTS: TypeAdapter[ArticleEvent] = TypeAdapter(
    Annotated[ArticleEvent, Field(discriminator="type")]
)


def parse_event(payload: object) -> ArticleEvent | IgnoredEvent:
    """Validate a decoded JSON body; raises pydantic's ``ValidationError`` (a 422)."""
    envelope = _Envelope.model_validate(payload)
    if envelope.type not in (PUBLISHED, UPDATED, UNPUBLISHED):
        return IgnoredEvent(envelope.type)
    return _KNOWN_EVENTS.validate_python(payload)


# --- The intake ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntakeRules:
    """The configuration an event is judged by."""

    alerting_topics: Collection[str]
    hold_seconds: int
    ttl_seconds: int
    default_locale: str = "en"
    # The ids of the apps an article may name in ``apps``.
    apps: Collection[str] = (DEFAULT_APP,)


class UnknownApps(ValueError):
    """An article names apps the deployment does not serve (a 422, nothing recorded)."""

    def __init__(self, app_ids: Collection[str]) -> None:
        self.app_ids = sorted(set(app_ids))
        super().__init__(f"unknown app(s): {', '.join(self.app_ids)}")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """The answer to one delivery (its triggers are published by the session once it commits)."""

    decision: Decision
    alert: dict[str, object] | None = None  # alert_view() of the article's alert, if any
    replayed: bool = False  # the same webhook-id was answered before; nothing was done again

    @property
    def status(self) -> int:
        return 202 if self.decision in _ANNOUNCES_ALERT else 200

    @property
    def alert_id(self) -> str | None:
        return str(self.alert["id"]) if self.alert else None

    def as_json(self) -> dict[str, object]:
        return {"decision": self.decision.value, "alert": self.alert, "replayed": self.replayed}


def _parse_for(payload: object, rules: IntakeRules) -> ArticleEvent | IgnoredEvent:
    """The event, checked against what this deployment serves: an article naming an app it does
    not serve is refused (``UnknownApps``) before anything is recorded."""
    event = parse_event(payload)
    apps = event.data.apps if isinstance(event, ArticleChanged) else None
    if apps and set(apps) - set(rules.apps):
        raise UnknownApps(set(apps) - set(rules.apps))
    return event


def ingest_event(
    session: Session,
    *,
    webhook_id: str,
    payload: object,
    rules: IntakeRules,
    now: datetime | None = None,
) -> IntakeResult:
    """Decide what a verified delivery means, and record it in ``session``'s transaction.

    The caller commits; the session's after-commit hook publishes the triggers, and if the broker
    is down then, the outbox rows stay for the sweeper and the event is still safely recorded.
    Raises ``ValidationError`` for a body of the wrong shape, before touching the database.
    """
    event = _parse_for(payload, rules)
    now = now or utcnow()
    try:
        with session.begin_nested():
            return _ingest_once(session, webhook_id, event, rules, now)
    except IntegrityError:
        # A concurrent delivery of this webhook or article committed between our reads and our
        # writes; a unique constraint stopped the second alert. Its rows are visible now, so a
        # second pass answers as its replay or as a duplicate.
        log.info(
            "concurrent delivery of the same event; answering from the one that won",
            extra={"fields": {"webhook_id": webhook_id}},
        )
        with session.begin_nested():
            return _ingest_once(session, webhook_id, event, rules, now)


def record_event(
    sessions: sessionmaker[Session],
    *,
    webhook_id: str,
    payload: object,
    rules: IntakeRules,
    also: Callable[[Session | Connection, IntakeResult], None] | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
    publisher: Callable[[], Publisher | None] | None = None,
) -> IntakeResult:
    """:func:`ingest_event` in a transaction of its own, committed before returning.

    The API's way. Owning the transaction, it retries a lost race by running the whole
    transaction again instead of inside a SAVEPOINT, which saves two round trips on every
    delivery for a race that almost never happens. ``also`` runs in the same transaction once
    the event is decided (the API counts the delivery there).

    Given ``engine``, a first delivery of an article event (nearly every event) is first tried
    on a Core connection, without a Session (see :func:`_record_on_core`): the Session's
    per-transaction bookkeeping was a large part of an event's CPU. The triggers of the alerts
    it creates are published by ``publisher`` once that transaction commits (without one, the
    sweeper publishes them).
    """
    event = _parse_for(payload, rules)
    now = now or utcnow()
    core = engine if not isinstance(event, ArticleUnpublished) else None
    for attempt in range(2):
        try:
            if core is not None:
                quick = _record_on_core(
                    core,
                    publisher,
                    webhook_id,
                    cast(ArticleChanged | IgnoredEvent, event),
                    rules,
                    now,
                    also,
                )
                if quick is not None:
                    return quick
            with transaction(sessions) as session:
                result = _ingest_once(session, webhook_id, event, rules, now)
                if also is not None:
                    also(session, result)
            return result
        except IntegrityError:
            if attempt:
                raise
            log.info(
                "concurrent delivery of the same event; answering from the one that won",
                extra={"fields": {"webhook_id": webhook_id}},
            )
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _can_alert(data: ArticleData, rules: IntakeRules) -> bool:
    """Whether a new article would get an alert: breaking, or on an alerting topic."""
    return data.breaking or not set(data.topics).isdisjoint(rules.alerting_topics)


def _record_on_core(
    engine: Engine,
    publisher: Callable[[], Publisher | None] | None,
    webhook_id: str,
    event: ArticleChanged | IgnoredEvent,
    rules: IntakeRules,
    now: datetime,
    also: Callable[[Session | Connection, IntakeResult], None] | None,
) -> IntakeResult | None:
    """Record a first delivery on a Core connection, with :func:`_ingest_once`'s decisions, or
    roll back and return None for the Session path to decide: an article that has an alert
    (which is read, edited and shown through the ORM), a stale revision, or a webhook-id
    answered before (a replay). An alert created here has its trigger published once the
    transaction commits (:func:`notifier.core.outbox.core_transaction`).
    """
    with core_transaction(engine, publisher) as work:
        result = _core_decision(work, webhook_id, event, rules, now)
        if result is None:
            work.rollback()
            return None
        if also is not None:
            also(work.connection, result)
    return result


def _ingest_once(
    session: Session,
    webhook_id: str,
    event: ArticleEvent | IgnoredEvent,
    rules: IntakeRules,
    now: datetime,
) -> IntakeResult:
    recorded = session.execute(_FIND_DELIVERY, {"webhook_id": webhook_id}).first()
    if recorded is not None:
        return _replay(session, recorded.decision, recorded.alert_id)

    alert: Alert | None
    if isinstance(event, IgnoredEvent):
        decision, alert, article_id = Decision.IGNORED, None, None
    elif isinstance(event, ArticleUnpublished):
        decision, alert = _unpublish(session, event.data.id, now)
        article_id = event.data.id
    else:
        decision, alert = _article_changed(session, event, rules, now)
        article_id = event.data.id

    session.execute(
        _RECORD_DELIVERY,
        {
            "webhook_id": webhook_id,
            "type": event.type,
            "article_id": article_id,
            "decision": decision.value,
            "alert_id": alert.id if alert else None,
            "received_at": now,
        },
    )
    return IntakeResult(decision, alert_view(alert) if alert else None)


def _core_decision(
    work: CoreWork,
    webhook_id: str,
    event: ArticleChanged | IgnoredEvent,
    rules: IntakeRules,
    now: datetime,
) -> IntakeResult | None:
    """:func:`_record_on_core`'s statements: the article upserted, its alert created if it
    alerts, then the delivery recorded unless this webhook-id has been (None then, like an
    article with an alert or a stale revision). Inserting the delivery with ON CONFLICT DO
    NOTHING instead of looking it up first saves a statement; a redelivery is rare, and its
    writes are rolled back before the Session path answers it as a replay. A concurrent
    delivery of the same article waits for the first's commit at the article's row lock; if
    the first created an alert, the second's alert breaks the one-alert-per-article constraint
    (an IntegrityError: :func:`record_event` decides it again, on the Session path).
    """
    connection = work.connection
    alert: Alert | None = None
    if isinstance(event, IgnoredEvent):
        decision, article_id = Decision.IGNORED, None
    elif connection.dialect.name == "postgresql" and not _can_alert(event.data, rules):
        return _quiet_upsert_and_record(connection, webhook_id, event, now)
    else:
        data = event.data
        stored = _store_article(
            connection, connection.dialect.name, data, now, republished=event.type == PUBLISHED
        )
        if stored is None or stored.alert_id is not None:
            return None
        if stored.unpublished_at is not None:
            decision = Decision.ARTICLE_UNPUBLISHED
        elif not _can_alert(data, rules):
            decision = Decision.NOT_BREAKING
        else:
            decision = Decision.ALERT_CREATED
            alert = create_alert_on(
                work,
                _draft(data, now),
                default_hold=rules.hold_seconds,
                default_ttl=rules.ttl_seconds,
                now=now,
                default_locale=rules.default_locale,
            )
        article_id = data.id
    recorded = connection.execute(
        _record_new_delivery(connection.dialect.name),
        {
            "webhook_id": webhook_id,
            "type": event.type,
            "article_id": article_id,
            "decision": decision.value,
            "alert_id": alert.id if alert else None,
            "received_at": now,
        },
    )
    if recorded.first() is None:
        return None
    return IntakeResult(decision, alert_view(alert) if alert else None)


def _quiet_upsert_and_record(
    connection: Connection, webhook_id: str, event: ArticleChanged, now: datetime
) -> IntakeResult | None:
    """An event that cannot alert, on PostgreSQL: the article upsert and the delivery's INSERT
    in one statement (a data-modifying CTE), with :func:`_core_decision`'s decisions. The
    delivery is inserted only if the upsert wrote the article (not a stale revision) and the
    article has no alert, ON CONFLICT DO NOTHING; no decision back (stale, an alert, or this
    webhook-id recorded before) is None, and the caller rolls the upsert back for the Session
    path to decide. One round trip fewer for nine events in ten.
    """
    decision = connection.execute(
        _quiet_statement(event.type == PUBLISHED),
        {
            **_article_row(event.data, now),
            "webhook_id": webhook_id,
            "type": event.type,
            "article_id": event.data.id,
            "received_at": now,
        },
    ).scalar()
    return IntakeResult(Decision(decision)) if decision is not None else None


@functools.cache
def _quiet_statement(republished: bool) -> Any:
    """:func:`_quiet_upsert_and_record`'s statement, built once per kind of event."""
    article = _article_upsert("postgresql", republished).cte("article")
    decided = case(
        (article.c.unpublished_at.is_(None), literal(Decision.NOT_BREAKING.value)),
        else_=literal(Decision.ARTICLE_UNPUBLISHED.value),
    )
    row = select(
        bindparam("webhook_id", type_=_deliveries.c.webhook_id.type),
        bindparam("type", type_=_deliveries.c.type.type),
        bindparam("article_id", type_=_deliveries.c.article_id.type),
        decided,
        null(),
        bindparam("received_at", type_=_deliveries.c.received_at.type),
    ).where(article.c.alert_id.is_(None))
    columns = ["webhook_id", "type", "article_id", "decision", "alert_id", "received_at"]
    delivery = (
        postgresql.insert(_deliveries)
        .from_select(columns, row)
        .on_conflict_do_nothing(index_elements=["webhook_id"])
        .returning(_deliveries.c.decision)
        .cte("delivery")
    )
    return select(delivery.c.decision)


@functools.cache
def _record_new_delivery(dialect: str) -> Any:
    """The delivery's INSERT, doing nothing if its webhook-id is recorded already; it returns
    the new row's id, as the PostgreSQL driver's rowcount is not reliable here."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_deliveries)
    return statement.on_conflict_do_nothing(index_elements=["webhook_id"]).returning(
        _deliveries.c.id
    )


# Core statements built once: the ORM's unit of work and per-request statement building cost
# more CPU than PostgreSQL spends on these.
_deliveries = cast(Table, WebhookEvent.__table__)
_FIND_DELIVERY = select(_deliveries.c.decision, _deliveries.c.alert_id).where(
    _deliveries.c.webhook_id == bindparam("webhook_id")
)
_RECORD_DELIVERY = insert(_deliveries)


def _replay(session: Session, decision: str, alert_id: str | None) -> IntakeResult:
    alert = session.get(Alert, alert_id) if alert_id else None
    return IntakeResult(Decision(decision), alert_view(alert) if alert else None, replayed=True)


def _article_changed(
    session: Session, event: ArticleChanged, rules: IntakeRules, now: datetime
) -> tuple[Decision, Alert | None]:
    data = event.data
    dialect = session.get_bind().dialect.name
    stored = _store_article(session, dialect, data, now, republished=event.type == PUBLISHED)
    if stored is None:
        # Deliveries arrive out of order: the stored revision is newer and was kept. A retried
        # publish still gets its alert back, so the CMS sees the answer it missed.
        alert = _alert_of(session, data.id)
        if alert is not None and event.type == PUBLISHED:
            return Decision.DUPLICATE, alert
        return Decision.STALE_REVISION, alert
    # An alert references its article row, so a first delivery (no row yet) has none to find.
    alert = _alert_of(session, data.id) if stored.alert_id is not None else None
    if alert is not None:
        if event.type == PUBLISHED:
            return Decision.DUPLICATE, alert
        return _edit_alert(alert, data), alert
    if stored.unpublished_at is not None:
        return Decision.ARTICLE_UNPUBLISHED, None
    if not _can_alert(data, rules):
        return Decision.NOT_BREAKING, None
    return Decision.ALERT_CREATED, create_alert(
        session,
        _draft(data, now),
        default_hold=rules.hold_seconds,
        default_ttl=rules.ttl_seconds,
        now=now,
        default_locale=rules.default_locale,
    )


def _draft(data: ArticleData, now: datetime) -> AlertDraft:
    """The alert an article asks for; the rules of :mod:`notifier.alerts.service` do the rest."""
    return AlertDraft(
        headline=data.headline,
        body=data.summary,
        url=data.url,
        image_url=data.image_url,
        topics=tuple(data.topics),
        article_id=data.id,
        source="webhook",
        event_received_at=now,
        urgency=Urgency.URGENT if data.urgent else Urgency.NORMAL,
        locale=data.locale,
        translations={tag: _translation(text) for tag, text in (data.translations or {}).items()},
        locales=tuple(data.locales) if data.locales else None,
        apps=tuple(data.apps) if data.apps else None,
    )


def _translation(text: ArticleTranslation) -> dict[str, str]:
    stored = {"headline": text.headline}
    if text.summary is not None:
        stored["body"] = text.summary
    if text.url is not None:
        stored["url"] = text.url
    return stored


def _is_stale(stored: int | None, incoming: int | None) -> bool:
    """An older revision than the one stored; deliveries can arrive out of order."""
    return stored is not None and incoming is not None and incoming < stored


def _store_article(
    session: Session | Connection,
    dialect: str,
    data: ArticleData,
    now: datetime,
    *,
    republished: bool,
) -> Any:
    """Insert or update the article in one statement, unless the stored revision is newer.

    Returns its ``unpublished_at`` and the id of its alert (if any), or None when the stored
    revision is newer and nothing was written. Either way the row stays locked until commit, so
    concurrent deliveries of one article are decided one after the other. A concurrent first
    delivery of the article that commits an alert meanwhile surfaces as an IntegrityError when
    this one creates its own, and the delivery is decided again.
    """
    return session.execute(_article_upsert(dialect, republished), _article_row(data, now)).first()


def _article_row(data: ArticleData, now: datetime) -> dict[str, Any]:
    """The article's columns, as :func:`_article_upsert`'s parameters."""
    return {
        "id": data.id,
        "url": data.url,
        "headline": data.headline,
        "summary": data.summary,
        "image_url": data.image_url,
        "topics": list(data.topics),
        "breaking": data.breaking,
        "locale": data.locale,
        "revision": data.revision,
        "published_at": data.published_at,
        "unpublished_at": None,
        "updated_at": now,
    }


_ARTICLE_COLUMNS = (
    "id",
    "url",
    "headline",
    "summary",
    "image_url",
    "topics",
    "breaking",
    "locale",
    "revision",
    "published_at",
    "unpublished_at",
    "updated_at",
)


@functools.cache
def _article_upsert(dialect: str, republished: bool) -> Any:
    """The article upsert, built once per backend and kind of event (see :func:`_store_article`).

    A revision or publication time the event does not carry keeps the stored one; a publish
    brings an unpublished article back, an update does not.
    """
    articles, alerts = cast(Table, Article.__table__), Alert.__table__
    # The values as named parameters (not implied by the parameters given at execution), so
    # the same statement can also be a CTE (:func:`_quiet_upsert_and_record`).
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(articles).values(
        {name: bindparam(name, type_=articles.c[name].type) for name in _ARTICLE_COLUMNS}
    )
    new = statement.excluded
    changes: dict[str, Any] = {
        name: new[name]
        for name in ("url", "headline", "summary", "image_url", "topics", "breaking", "locale")
    }
    changes.update(
        revision=func.coalesce(new.revision, articles.c.revision),
        published_at=func.coalesce(new.published_at, articles.c.published_at),
        unpublished_at=None if republished else articles.c.unpublished_at,
        updated_at=new.updated_at,
    )
    not_stale = or_(
        articles.c.revision.is_(None), new.revision.is_(None), new.revision >= articles.c.revision
    )
    # RETURNING names columns unqualified on some backends, so the correlation is spelled out.
    alert_id = (
        select(alerts.c.id)
        .where(alerts.c.article_id == literal_column("articles.id"))
        .scalar_subquery()
    )
    return statement.on_conflict_do_update(
        index_elements=["id"], set_=changes, where=not_stale
    ).returning(articles.c.unpublished_at, alert_id.label("alert_id"))


def _edit_alert(alert: Alert, data: ArticleData) -> Decision:
    """Carry a corrected article into its alert while nothing has been sent.

    Topics follow too: before planning, the audience has not been chosen. Un-flagging ``breaking``
    does not cancel: cancelling is an explicit act (``article.unpublished`` or an editor).
    """
    if alert.status != AlertStatus.SCHEDULED or alert.planning_started_at is not None:
        return Decision.ALERT_NOT_EDITABLE
    alert.headline = data.headline
    alert.body = data.summary
    alert.url = data.url
    alert.image_url = data.image_url
    alert.topics = sorted(set(data.topics))
    return Decision.ALERT_UPDATED


def _unpublish(session: Session, article_id: str, now: datetime) -> tuple[Decision, Alert | None]:
    """Mark the article pulled and stop its alert.

    Revisions are not compared here: an older-looking unpublish still cancels, because sending a
    pulled article is worse than missing a republished one.
    """
    article = session.get(Article, article_id, with_for_update=True)
    if article is not None:
        article.unpublished_at = article.updated_at = now
    alert = _alert_of(session, article_id)
    if alert is None:
        return Decision.NO_ALERT, None
    if alert.status == AlertStatus.CANCELLED:
        return Decision.ALERT_CANCELLED, alert
    if alert.status not in LIVE_ALERT_STATUSES:
        return Decision.ALERT_NOT_CANCELLABLE, alert
    cancel_alert(session, alert.id, now=now)
    alert.status_reason = "article unpublished"
    session.flush()
    return Decision.ALERT_CANCELLED, alert


def _alert_of(session: Session, article_id: str) -> Alert | None:
    """The article's alert, locked so a concurrent planner or editor waits for this decision."""
    return session.scalar(select(Alert).where(Alert.article_id == article_id).with_for_update())
