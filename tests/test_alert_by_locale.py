"""``GET /v1/alerts/{id}``'s ``by_locale``: the console's per-language counts, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Delivery, Device
from notifier.core.vocabulary import DeliveryStatus, Platform
from notifier.runtime import Runtime


class NoPublisher:
    def publish(self, kind: str, ref: str, countdown: float = 0) -> None:
        """The alert stays in its hold window: the deliveries are written by the test."""


@pytest.fixture
def editor(runtime: Runtime) -> dict[str, str]:
    runtime.publisher = NoPublisher()
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "by_locale test")
    return {"Authorization": f"Bearer {key}"}


def record(runtime: Runtime, alert_id: str, outcomes: list[tuple[str | None, str, bool]]) -> None:
    """One device per outcome: (device locale, delivery status, silent)."""
    with transaction(runtime.sessions) as session:
        for n, (locale, status, silent) in enumerate(outcomes):
            device = Device(token=f"tok-{alert_id}-{n}", platform=Platform.ANDROID, locale=locale)
            session.add(device)
            session.flush()
            session.add(
                Delivery(
                    alert_id=alert_id,
                    device_id=device.id,
                    batch_id=1,
                    status=DeliveryStatus(status),
                    silent=silent,
                )
            )


def make_alert(client: FlaskClient, editor: dict[str, str]) -> str:
    body = {
        "headline": "Sirens in the north",
        "url": "https://news.example/a",
        "topics": ["israel"],
        "hold_seconds": 3600,
    }
    response = client.post("/v1/alerts", json=body, headers=editor)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def test_by_locale_counts_each_language_with_regional_tags_folded_in(
    client: FlaskClient, runtime: Runtime, editor: dict[str, str]
) -> None:
    alert_id = make_alert(client, editor)
    record(
        runtime,
        alert_id,
        [
            ("fr", "sent", False),
            ("fr-CA", "sent", True),
            ("fr_BE", "suppressed", False),
            ("he", "failed", False),
            ("he-IL", "pending", False),
            (None, "sent", False),  # no locale: the default, en
            ("en-GB", "pruned", False),
        ],
    )
    view: dict[str, Any] = client.get(f"/v1/alerts/{alert_id}", headers=editor).json
    by_locale = view["by_locale"]
    assert list(by_locale) == ["fr", "en", "he"]  # most devices first, then by name
    assert by_locale["fr"]["sent"] == 2
    assert by_locale["fr"]["silent"] == 1
    assert by_locale["fr"]["suppressed"] == 1
    assert by_locale["fr"]["audience"] == 3
    assert by_locale["he"] == {
        "audience": 2,
        "pending": 1,
        "sent": 0,
        "failed": 1,
        "pruned": 0,
        "cancelled": 0,
        "suppressed": 0,
        "silent": 0,
    }
    assert by_locale["en"]["sent"] == 1
    assert by_locale["en"]["pruned"] == 1


def test_by_locale_statuses_add_up_to_each_languages_audience(
    client: FlaskClient, runtime: Runtime, editor: dict[str, str]
) -> None:
    alert_id = make_alert(client, editor)
    record(runtime, alert_id, [("ar", s.value, False) for s in DeliveryStatus])
    counts = client.get(f"/v1/alerts/{alert_id}", headers=editor).json["by_locale"]["ar"]
    statuses = sum(counts[s.value] for s in DeliveryStatus)
    assert statuses == counts["audience"] == len(DeliveryStatus)


def test_an_alert_no_device_was_recorded_for_has_no_languages(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    alert_id = make_alert(client, editor)
    assert client.get(f"/v1/alerts/{alert_id}", headers=editor).json["by_locale"] == {}


def test_the_alert_list_does_not_carry_by_locale(
    client: FlaskClient, editor: dict[str, str]
) -> None:
    make_alert(client, editor)
    listed = client.get("/v1/alerts", headers=editor).json["alerts"]
    assert listed and all("by_locale" not in alert for alert in listed)
