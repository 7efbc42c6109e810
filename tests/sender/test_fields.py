"""Field values respect each platform's limits whatever the alert id or label looks like."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from notifier.fcm import fields as fcm_fields
from notifier.fcm.sender import build_message
from tests.sender.factories import make_alert, make_target


def test_long_alert_ids_fit_apns_collapse_id_and_stay_distinct() -> None:
    """Two alerts sharing a long prefix must not collapse into one notification on iOS."""
    first, second = (fcm_fields.apns_collapse_id("a" * 100 + end) for end in ("1", "2"))
    assert len(first.encode()) <= 64 and len(second.encode()) <= 64
    assert first != second


def test_web_topic_is_short_and_url_safe() -> None:
    topic = fcm_fields.webpush_topic("b0e2c3a4-5d6f-4a1b-9c8d-7e6f5a4b3c2d")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic)


@pytest.mark.parametrize("label", ["ok-label", "spaces and/slashes", "é" * 10, "x" * 80])
def test_analytics_label_matches_fcm_pattern(label: str) -> None:
    sanitised = fcm_fields.analytics_label(make_alert(analytics_label=label))
    assert re.fullmatch(r"[a-zA-Z0-9\-_.~%]{1,50}", sanitised)


def test_remaining_ttl_is_capped_by_the_alert_ttl() -> None:
    alert = make_alert(expires_at=datetime.now(UTC) + timedelta(days=1), ttl_seconds=600)
    assert fcm_fields.remaining_ttl(alert) == 600


def test_plain_http_article_gets_no_web_link() -> None:
    message = build_message(make_alert(url="http://news.example/a"), make_target(platform="web"))
    assert message.webpush.fcm_options is None


def test_building_a_message_for_an_expired_alert_is_refused() -> None:
    stale = make_alert(expires_at=datetime.now(UTC) - timedelta(seconds=5))
    with pytest.raises(ValueError, match="expired"):
        build_message(stale, make_target())
