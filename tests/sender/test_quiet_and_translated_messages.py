"""Per-device variants of a message, through the real sender and the emulator: quiet hours'
silent delivery on each platform, and a translation's words and link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifier.fcm.sender import FcmSender
from notifier.fcm.types import Localized, Platform, Target
from tests.sender.factories import make_alert

Received = Callable[[], list[dict[str, Any]]]


def _deliver(sender: FcmSender, received: Received, *targets: Target) -> dict[str, Any]:
    outcomes = sender.send_batch(make_alert(), list(targets))
    assert [o.kind for o in outcomes] == ["accepted"] * len(targets)
    return {item["token"]: item["message"] for item in received()}


def test_silent_delivery_is_quiet_on_every_platform_and_normal_beside_it(
    sender: FcmSender, received: Received
) -> None:
    targets = [
        Target(1, "android-quiet", Platform.ANDROID, silent=True),
        Target(2, "android-loud", Platform.ANDROID),
        Target(3, "ios-quiet", Platform.IOS, silent=True),
        Target(4, "web-quiet", Platform.WEB, silent=True),
    ]
    messages = _deliver(sender, received, *targets)

    quiet_android = messages["android-quiet"]["android"]
    assert quiet_android["priority"] == "normal"
    assert quiet_android["notification"]["channel_id"] == "quiet"
    assert quiet_android["notification"]["notification_priority"] == "PRIORITY_LOW"
    assert messages["android-loud"]["android"]["notification"]["channel_id"] == "breaking"
    apns = messages["ios-quiet"]["apns"]
    assert apns["headers"]["apns-priority"] == "5"
    assert apns["payload"]["aps"]["interruption-level"] == "passive"
    assert "sound" not in apns["payload"]["aps"]
    webpush = messages["web-quiet"]["webpush"]
    assert webpush["notification"]["silent"] is True
    assert webpush["headers"]["Urgency"] == "normal"


def test_a_translated_device_gets_its_words_and_link_and_the_others_the_alerts(
    sender: FcmSender, received: Received
) -> None:
    french = Localized("fr", "Tempête sur la côte", None, "https://news.example/fr/storm")
    messages = _deliver(
        sender,
        received,
        Target(1, "fr-device", Platform.WEB, text=french),
        Target(2, "en-device", Platform.WEB),
    )

    assert messages["fr-device"]["notification"]["title"] == "Tempête sur la côte"
    assert "body" not in messages["fr-device"]["notification"]
    assert messages["fr-device"]["data"]["url"] == "https://news.example/fr/storm"
    assert messages["fr-device"]["webpush"]["fcm_options"]["link"] == (
        "https://news.example/fr/storm"
    )
    assert messages["en-device"]["notification"]["title"] == "Storm closes the coast road"
