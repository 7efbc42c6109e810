"""The readers' subscription API: adapters from JSON to :mod:`notifier.subscriptions.service`."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import select

from notifier.core.db import transaction
from notifier.core.logs import bind, token_ref
from notifier.core.models import Topic
from notifier.http import context
from notifier.http.apps import app_of
from notifier.http.limits import limit_device_token
from notifier.http.problems import Problem
from notifier.http.requests import json_body
from notifier.subscriptions import service as service
from notifier.subscriptions.requests import (
    LookupRequest,
    RotateTokenRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)

bp = Blueprint("subscriptions", __name__)


def _unknown_topics(exc: service.UnknownTopics) -> Problem:
    # Same problem as POST /v1/alerts: about:blank, with the slugs in ``unknown_topics``.
    return Problem(422, "Unknown topic", str(exc), unknown_topics=exc.slugs)


@bp.post("/v1/subscriptions")
def subscribe() -> tuple[Response, int]:
    req = json_body(SubscribeRequest)
    bind(device=token_ref(req.token))
    limit_device_token(req.token)
    app = app_of(req.app)
    try:
        # Its own transaction, not a Session's: one statement on PostgreSQL (see there).
        profile, created = service.subscribe_in(
            context.runtime().engine,
            app=app,
            token=req.token,
            platform=req.platform,
            topics=req.topics,
            preferences=req.preference_changes(),
        )
    except service.UnknownTopics as exc:
        raise _unknown_topics(exc) from None
    except service.QuietHoursNeedAZone as exc:
        raise Problem(422, "Quiet hours need a time zone", str(exc)) from None
    return jsonify(_profile_json(profile)), 201 if created else 200


@bp.delete("/v1/subscriptions")
def unsubscribe() -> tuple[str, int]:
    req = json_body(UnsubscribeRequest)
    limit_device_token(req.token)
    app = app_of(req.app)
    try:
        with transaction(context.runtime().sessions) as session:
            service.unsubscribe(session, token=req.token, topics=req.topics, app=app)
    except service.UnknownTopics as exc:
        raise _unknown_topics(exc) from None
    return "", 204


@bp.post("/v1/subscriptions/lookup")
def lookup() -> Response:
    req = json_body(LookupRequest)
    app = app_of(req.app)
    with transaction(context.runtime().sessions) as session:
        profile = service.lookup(session, req.token, app)
    if profile is None:
        raise Problem(404, "Not Found", "No subscription for this token.")
    return jsonify(_profile_json(profile))


@bp.put("/v1/subscriptions/token")
def rotate_token() -> Response:
    req = json_body(RotateTokenRequest)
    limit_device_token(req.old_token)
    app = app_of(req.app)
    with transaction(context.runtime().sessions) as session:
        profile = service.rotate_token(
            session, old_token=req.old_token, new_token=req.new_token, app=app
        )
    if profile is None:
        raise Problem(404, "Not Found", "No subscription for the old token.")
    return jsonify(_profile_json(profile))


@bp.get("/v1/topics")
def topics() -> Response:
    with transaction(context.runtime().sessions) as session:
        rows = session.execute(
            select(Topic.slug, Topic.name).where(Topic.active.is_(True)).order_by(Topic.id)
        ).all()
    return jsonify({"topics": [{"slug": slug, "name": name} for slug, name in rows]})


def _profile_json(profile: service.DeviceProfile) -> dict[str, object]:
    return profile.as_json(default_max_per_day=context.runtime().settings.default_max_per_day)
