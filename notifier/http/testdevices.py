"""Editors register their own phones and browsers, then test-send an alert to them only."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from notifier.alerts import test_sends as service
from notifier.alerts.service import AlertNotFound, alert_view, get_alert
from notifier.core.db import transaction
from notifier.core.vocabulary import Platform
from notifier.http import context
from notifier.http.auth import current_principal, require_role
from notifier.http.problems import Problem
from notifier.http.requests import json_body
from notifier.subscriptions.requests import PlatformName, Strict, Token

bp = Blueprint("testdevices", __name__)


class TestDeviceRequest(Strict):
    __test__ = False  # not a pytest class

    token: Token
    platform: PlatformName = Platform.ANDROID


class RemoveTestDeviceRequest(Strict):
    token: Token


@bp.post("/v1/test-devices")
@require_role("editor")
def add() -> tuple[Response, int]:
    req = json_body(TestDeviceRequest)
    try:
        with transaction(context.runtime().sessions) as session:
            added = service.add_test_device(
                session, current_principal().key_id, token=req.token, platform=req.platform
            )
            count = len(service.list_test_devices(session, current_principal().key_id))
    except service.TooManyTestDevices as exc:
        raise Problem(422, "Too many test devices", str(exc)) from None
    return jsonify({"test_devices": count}), 201 if added else 200


@bp.delete("/v1/test-devices")
@require_role("editor")
def remove() -> tuple[str, int]:
    req = json_body(RemoveTestDeviceRequest)
    with transaction(context.runtime().sessions) as session:
        service.remove_test_device(session, current_principal().key_id, token=req.token)
    return "", 204


@bp.get("/v1/test-devices")
@require_role("editor")
def list_() -> Response:
    with transaction(context.runtime().sessions) as session:
        devices = service.list_test_devices(session, current_principal().key_id)
        return jsonify(
            {
                "test_devices": [
                    {"platform": d.platform, "state": d.state, "added": d.created_at.isoformat()}
                    for d in devices
                ]
            }
        )


@bp.post("/v1/alerts/<alert_id>/test")
@require_role("editor")
def test_send(alert_id: str) -> tuple[Response, int]:
    runtime = context.runtime()
    principal = current_principal()
    try:
        with transaction(runtime.sessions) as session:
            # An unknown alert is a 404 whatever the key has: the path names the resource.
            get_alert(session, alert_id)
            if not service.list_test_devices(session, principal.key_id):
                raise Problem(
                    422, "No test devices", "Register one with POST /v1/test-devices first."
                )
            test = service.create_test_send(
                session, alert_id, principal.key_id, ttl=runtime.settings.default_ttl_seconds
            )
            view = alert_view(test)
    except AlertNotFound:
        raise Problem(404, "Not Found", "No such alert.") from None
    return jsonify(view), 202
