"""Editors' alert API: create (idempotently), list, inspect, cancel, send now."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import AfterValidator, BeforeValidator, Field, HttpUrl
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from notifier.alerts import latency
from notifier.alerts import service as service
from notifier.core.db import transaction
from notifier.core.models import Alert
from notifier.core.vocabulary import AlertStatus, Urgency
from notifier.http import context, idempotency
from notifier.http.apps import apps_of
from notifier.http.auth import current_principal, require_role
from notifier.http.problems import Problem
from notifier.http.requests import json_body
from notifier.subscriptions.requests import (
    WHITESPACE,
    AppId,
    Locale,
    Slug,
    Strict,
    not_blank,
    stored_text,
)
from notifier.subscriptions.service import UnknownTopics, resolve_topics

bp = Blueprint("alerts", __name__)

STATUSES = tuple(AlertStatus)


# The description's HttpUrl pattern, checked before pydantic parses the URL, so that both say
# the same: no whitespace or control characters (pydantic would percent-encode a pasted space
# and accept it), none of the characters a strict URL parser refuses, and % only as an escape.
# Non-ASCII letters (an IRI pasted from a browser's address bar) stay allowed. Whether the host
# and port parse is pydantic's to say (a 422 as well), which no pattern can.
_NOT_IN_URLS = '\\x00-\\x20\\x7f-\\x9f"<>\\\\\\[\\]^`{|}%' + WHITESPACE
_EDITOR_URL = re.compile(
    # A host must follow the scheme (not a path, query, fragment or port), hence the first class.
    f"[Hh][Tt][Tt][Pp][Ss]?://(?:[^/?#:{_NOT_IN_URLS}]|%[0-9A-Fa-f]{{2}})"
    f"(?:[^{_NOT_IN_URLS}]|%[0-9A-Fa-f]{{2}})*"
)


def _plain_url(value: object) -> object:
    if isinstance(value, str) and _EDITOR_URL.fullmatch(value) is None:
        raise ValueError(
            "must be an http(s) URL; spaces and characters such as <>{} must be %-escaped"
        )
    return value


# HttpUrl, unlike AnyHttpUrl, holds the 2,083-character limit the description states.
EditorUrl = Annotated[HttpUrl, BeforeValidator(_plain_url)]


class Translation(Strict):
    """The alert in another language; a missing ``url`` links to the alert's own."""

    headline: Annotated[str, stored_text(200), AfterValidator(not_blank)]
    body: Annotated[str, stored_text(1000)] | None = None
    url: EditorUrl | None = None

    def as_stored(self) -> dict[str, str]:
        text = {"headline": self.headline}
        if self.body is not None:
            text["body"] = self.body
        if self.url is not None:
            text["url"] = str(self.url)
        return text


class CreateAlertRequest(Strict):
    headline: Annotated[str, stored_text(200), AfterValidator(not_blank)]
    body: Annotated[str, stored_text(1000)] | None = None
    url: EditorUrl
    image_url: EditorUrl | None = None
    topics: Annotated[list[Slug], Field(min_length=1, max_length=50)]
    hold_seconds: Annotated[int, Field(ge=0, le=86_400)] | None = None
    ttl_seconds: Annotated[int, Field(ge=60, le=2_419_200)] | None = None
    priority: Literal["high", "normal"] = "high"
    urgency: Literal["normal", "urgent"] = "normal"
    locale: Locale | None = None
    translations: Annotated[dict[Locale, Translation], Field(max_length=20)] | None = None
    locales: Annotated[list[Locale], Field(min_length=1, max_length=20)] | None = None
    # Only devices of these apps (notifier/core/apps.py); omitted: every app.
    apps: Annotated[list[AppId], Field(min_length=1, max_length=50)] | None = None


def _not_found() -> Problem:
    return Problem(404, "Not Found", "No such alert.")


@bp.post("/v1/alerts")
@require_role("editor")
def create() -> tuple[Response, int]:
    req = json_body(CreateAlertRequest)
    principal = current_principal()
    key = idempotency.idempotency_key()
    # ``apps`` left out hashes as before it existed: a retry across the upgrade is a replay.
    unset_apps = {"apps"} if req.apps is None else None
    body_hash = idempotency.request_hash(req.model_dump(mode="json", exclude=unset_apps))
    runtime = context.runtime()
    apps = apps_of(req.apps)
    try:
        with transaction(runtime.sessions) as session:
            existing = idempotency.alert_by_key(session, key, str(principal.key_id))
            if existing is not None:
                return idempotency.replay(existing, body_hash)
            resolve_topics(session, req.topics)
            draft = service.AlertDraft(
                headline=req.headline,
                body=req.body,
                url=str(req.url),
                image_url=str(req.image_url) if req.image_url else None,
                topics=tuple(req.topics),
                hold_seconds=req.hold_seconds,
                ttl_seconds=req.ttl_seconds,
                priority=req.priority,
                urgency=Urgency(req.urgency),
                locale=req.locale,
                translations={
                    tag: text.as_stored() for tag, text in (req.translations or {}).items()
                },
                locales=tuple(req.locales) if req.locales else None,
                apps=apps,
                source="editor",
                created_by=str(principal.key_id),
                idempotency_key=key,
                request_hash=body_hash,
            )
            alert = service.create_alert(
                session,
                draft,
                default_hold=runtime.settings.hold_seconds,
                default_ttl=runtime.settings.default_ttl_seconds,
                default_locale=runtime.settings.default_locale,
            )
            view = service.alert_view(alert)
    except UnknownTopics as exc:
        raise Problem(422, "Unknown topic", str(exc), unknown_topics=exc.slugs) from None
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer as a replay.
        with transaction(runtime.sessions) as session:
            existing = idempotency.alert_by_key(session, key, str(principal.key_id))
            if existing is None:
                raise
            return idempotency.replay(existing, body_hash)
    return jsonify(view), 201


_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _is_uuid(value: str) -> bool:
    """The RFC 9562 text form, as the description's ``format: uuid`` means it."""
    return _UUID.fullmatch(value) is not None


@bp.get("/v1/alerts")
@require_role("editor", "ops")
def list_alerts() -> Response:
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise Problem(400, "Bad status filter", f"status must be one of {', '.join(STATUSES)}.")
    try:
        limit = min(200, max(1, int(request.args.get("limit", "50"))))
    except ValueError:
        raise Problem(400, "Bad limit", "limit must be a whole number.") from None
    before = request.args.get("before")
    with transaction(context.runtime().sessions) as session:
        query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit + 1)
        if status:
            query = query.where(Alert.status == status)
        if before is not None:
            if not _is_uuid(before):
                raise Problem(400, "Bad cursor", "before must be the id of a listed alert.")
            anchor = session.get(Alert, before)
            if anchor is None:
                # A well-formed cursor naming no alert: the alert it names is what is missing.
                raise Problem(404, "Not Found", "before names no alert.")
            query = query.where(
                (Alert.created_at < anchor.created_at)
                | ((Alert.created_at == anchor.created_at) & (Alert.id < anchor.id))
            )
        rows = list(session.scalars(query))
        page = rows[:limit]
        # One statement for the page on PostgreSQL, and only for alerts that accepted a device
        # since they were last computed (a sending one at most every few seconds): the console
        # polls this list every 2 s, during the fan-out too.
        latencies = latency.alert_latencies(session, page, live_max_age=latency.LIST_MAX_AGE)
    return jsonify(
        {
            "alerts": [
                {**service.alert_view(a), "latency": latencies[a.id].as_json()} for a in page
            ],
            "next": page[-1].id if len(rows) > limit else None,
        }
    )


@bp.get("/v1/alerts/<alert_id>")
@require_role("editor", "ops")
def get(alert_id: str) -> Response:
    with transaction(context.runtime().sessions) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise _not_found()
        view = service.alert_view(alert)
        view["latency"] = latency.alert_latency(session, alert).as_json()
        # Only the single-alert view carries it: one GROUP BY per alert, never per listed row.
        view["by_locale"] = service.by_locale(
            session, alert.id, context.runtime().settings.default_locale
        )
        view["by_app"] = service.by_app(session, alert.id)
        return jsonify(view)


@bp.post("/v1/alerts/<alert_id>/cancel")
@require_role("editor")
def cancel(alert_id: str) -> Response:
    try:
        with transaction(context.runtime().sessions) as session:
            alert = service.cancel_alert(session, alert_id)
            view = service.alert_view(alert)
    except service.AlertNotFound:
        raise _not_found() from None
    except service.AlertNotCancellable as exc:
        raise Problem(409, "Alert already finished", str(exc)) from None
    return jsonify(view)


@bp.post("/v1/alerts/<alert_id>/send-now")
@require_role("editor")
def send_now(alert_id: str) -> Response:
    try:
        with transaction(context.runtime().sessions) as session:
            alert = service.send_now(session, alert_id)
            view = service.alert_view(alert)
    except service.AlertNotFound:
        raise _not_found() from None
    except service.AlertNotCancellable as exc:
        raise Problem(409, "Alert is not in its hold window", str(exc)) from None
    return jsonify(view)
