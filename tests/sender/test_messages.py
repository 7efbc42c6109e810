"""The message each platform receives carries the fields the spec asks for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifier.core.vocabulary import Platform
from notifier.fcm.sender import FcmSender
from tests.sender.factories import make_alert, make_target

Received = Callable[[], list[dict[str, Any]]]


def _deliver(sender: FcmSender, received: Received, platform: Platform, **alert: Any) -> Any:
    outcomes = sender.send_batch(make_alert(**alert), [make_target(f"{platform}-1", platform)])
    assert outcomes[0].kind == "accepted"
    (item,) = received()
    return item["message"]


@pytest.mark.parametrize("platform", list(Platform))
def test_every_platform_gets_the_notification_data_and_label(
    sender: FcmSender, received: Received, platform: Platform
) -> None:
    message = _deliver(sender, received, platform, analytics_label="storm alert/1")
    assert message["notification"] == {
        "title": "Storm closes the coast road",
        "body": "Police advise against travel until morning.",
        "image": "https://news.example/storm.jpg",
    }
    assert message["data"] == {"alert_id": "alert-42", "url": "https://news.example/storm"}
    assert message["fcm_options"] == {"analytics_label": "storm-alert-1"}
    assert message["token"] == f"{platform}-1"


def test_android_message_is_high_priority_and_collapses_on_the_alert(
    sender: FcmSender, received: Received
) -> None:
    android = _deliver(sender, received, "android")["android"]
    assert android["priority"] == "high"
    assert android["collapse_key"] == "alert-42"
    assert android["notification"] == {"tag": "alert-42", "channel_id": "breaking"}
    assert 1790 <= int(android["ttl"].rstrip("s")) <= 1800


def test_ios_message_is_time_sensitive_and_collapses_on_the_alert(
    sender: FcmSender, received: Received
) -> None:
    expires_at = datetime.now(UTC) + timedelta(minutes=20)
    message = _deliver(sender, received, "ios", expires_at=expires_at)
    apns = message["apns"]
    assert apns["headers"]["apns-priority"] == "10"
    assert apns["headers"]["apns-collapse-id"] == "alert-42"
    assert apns["headers"]["apns-expiration"] == str(int(expires_at.timestamp()))
    aps = apns["payload"]["aps"]
    assert aps["thread-id"] == "weather"
    assert aps["interruption-level"] == "time-sensitive"
    assert aps["mutable-content"] == 1
    assert apns["fcm_options"]["image"] == "https://news.example/storm.jpg"
    assert "android" not in message and "webpush" not in message


def test_ios_message_without_image_needs_no_extension(
    sender: FcmSender, received: Received
) -> None:
    aps = _deliver(sender, received, "ios", image_url=None)["apns"]["payload"]["aps"]
    assert "mutable-content" not in aps


def test_web_message_is_urgent_and_opens_the_article(sender: FcmSender, received: Received) -> None:
    webpush = _deliver(sender, received, "web")["webpush"]
    assert webpush["headers"]["Urgency"] == "high"
    assert webpush["headers"]["Topic"] == "alert-42"
    assert 1790 <= int(webpush["headers"]["TTL"]) <= 1800
    assert webpush["fcm_options"]["link"] == "https://news.example/storm"
    assert webpush["notification"]["tag"] == "alert-42"


def test_web_clicks_go_through_the_open_counter_when_one_is_configured(
    sender: FcmSender, received: Received
) -> None:
    counted = "https://notifier.news.example/o/alert-42"
    webpush = _deliver(sender, received, "web", open_url=counted)["webpush"]
    assert webpush["fcm_options"]["link"] == counted


def test_ttl_never_outlives_the_alert(sender: FcmSender, received: Received) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=120)
    android = _deliver(sender, received, "android", expires_at=soon, ttl_seconds=3600)["android"]
    assert 110 <= int(android["ttl"].rstrip("s")) <= 120


def test_duplicate_alert_replaces_rather_than_stacks(sender: FcmSender, received: Received) -> None:
    alert = make_alert()
    sender.send_batch(alert, [make_target("android-1", "android")])
    sender.send_batch(alert, [make_target("android-1", "android")])
    first, second = (m["message"]["android"] for m in received())
    assert first["collapse_key"] == second["collapse_key"] == "alert-42"
    assert first["notification"]["tag"] == second["notification"]["tag"]
