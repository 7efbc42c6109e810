"""Readers' preferences and alerts' languages over the API: what is stored, what lookup says,
and bad input answered with a 422 problem, never a 500 (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from notifier.core.db import transaction
from notifier.core.models import Device
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import auth, subscription
from tests.test_alerts_api import ALERT, make_alert

QUIET = {"start": "22:00", "end": "07:00", "mode": "skip"}


def post(client: FlaskClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/subscriptions", json=body)


def lookup(client: FlaskClient, token: str) -> dict[str, Any]:
    response = client.post("/v1/subscriptions/lookup", json={"token": token})
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_preferences_are_stored_and_returned_by_lookup(client: FlaskClient) -> None:
    body = subscription(
        timezone="Asia/Kathmandu", quiet_hours=QUIET, max_per_day=3, urgent_overrides=False
    )
    response = post(client, body)
    assert response.status_code == 201, response.json
    profile = lookup(client, body["token"])
    assert profile["quiet_hours"] == QUIET
    assert (profile["max_per_day"], profile["urgent_overrides"], profile["state"]) == (
        3,
        False,
        "active",
    )


def test_a_new_device_has_the_defaults(client: FlaskClient) -> None:
    body = subscription()
    post(client, body)
    profile = lookup(client, body["token"])
    assert (profile["quiet_hours"], profile["max_per_day"], profile["urgent_overrides"]) == (
        None,
        None,
        True,
    )


def test_without_a_default_cap_a_reader_who_chose_none_has_no_effective_cap(
    client: FlaskClient,
) -> None:
    body = subscription()
    assert post(client, body).json["effective_max_per_day"] is None
    assert lookup(client, body["token"])["effective_max_per_day"] is None


@pytest.fixture
def capped_client(db_url: str, tmp_path: Path) -> Iterator[FlaskClient]:
    """The API of a deployment with ``NOTIFIER_DEFAULT_MAX_PER_DAY=5``."""
    runtime = Runtime.start(make_settings(tmp_path, database_url=db_url, default_max_per_day="5"))
    yield create_app(runtime=runtime).test_client()
    runtime.close()


def test_lookup_shows_the_cap_that_applies_the_readers_own_else_the_default(
    capped_client: FlaskClient,
) -> None:
    chose_none, chose_two = subscription(), subscription(max_per_day=2)
    post(capped_client, chose_none)
    post(capped_client, chose_two)

    caps = [
        (profile["max_per_day"], profile["effective_max_per_day"])
        for profile in (lookup(capped_client, b["token"]) for b in (chose_none, chose_two))
    ]

    assert caps == [(None, 5), (2, 2)]


def test_clearing_the_readers_cap_makes_the_default_the_effective_one_again(
    capped_client: FlaskClient,
) -> None:
    body = subscription(max_per_day=2)
    post(capped_client, body)

    cleared = post(capped_client, {**body, "max_per_day": None}).json

    assert (cleared["max_per_day"], cleared["effective_max_per_day"]) == (None, 5)
    assert lookup(capped_client, body["token"])["effective_max_per_day"] == 5


def test_an_omitted_preference_keeps_its_value_and_null_clears_it(client: FlaskClient) -> None:
    body = subscription(timezone="Europe/Paris", quiet_hours=QUIET, max_per_day=5, locale="fr")
    post(client, body)
    post(client, subscription(token=body["token"]))  # nothing named: everything kept
    kept = lookup(client, body["token"])
    assert (kept["quiet_hours"], kept["max_per_day"], kept["locale"]) == (QUIET, 5, "fr")

    post(
        client,
        subscription(
            token=body["token"], quiet_hours=None, max_per_day=None, urgent_overrides=None
        ),
    )
    cleared = lookup(client, body["token"])
    assert (cleared["quiet_hours"], cleared["max_per_day"], cleared["urgent_overrides"]) == (
        None,
        None,
        True,
    )
    assert cleared["timezone"] == "Europe/Paris"


def test_quiet_hours_mode_defaults_to_silent(client: FlaskClient) -> None:
    body = subscription(timezone="Asia/Kolkata", quiet_hours={"start": "23:15", "end": "06:45"})
    post(client, body)
    assert lookup(client, body["token"])["quiet_hours"] == {
        "start": "23:15",
        "end": "06:45",
        "mode": "silent",
    }


def test_quiet_hours_without_a_timezone_are_a_422(client: FlaskClient) -> None:
    response = post(client, subscription(quiet_hours=QUIET))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"


def test_clearing_the_zone_of_a_device_with_quiet_hours_is_a_422(client: FlaskClient) -> None:
    body = subscription(timezone="Asia/Jerusalem", quiet_hours=QUIET)
    post(client, body)
    response = post(client, subscription(token=body["token"], timezone=None))
    assert response.status_code == 422
    assert lookup(client, body["token"])["timezone"] == "Asia/Jerusalem"


def test_quiet_hours_using_the_stored_zone_are_accepted(client: FlaskClient) -> None:
    body = subscription(timezone="Asia/Jerusalem")
    post(client, body)
    response = post(client, subscription(token=body["token"], quiet_hours=QUIET))
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "UTC", "quiet_hours": {"start": "25:00", "end": "07:00"}},
        {"timezone": "UTC", "quiet_hours": {"start": "7:00", "end": "08:00"}},
        {"timezone": "UTC", "quiet_hours": {"start": "22:00"}},
        {"timezone": "UTC", "quiet_hours": {"start": "22:00", "end": "07:00", "mode": "loud"}},
        {"timezone": "UTC", "quiet_hours": {"start": 2200, "end": 700}},
        {"timezone": "UTC", "quiet_hours": "22:00-07:00"},
        {"timezone": "Mars/Olympus_Mons", "quiet_hours": QUIET},
        {"timezone": "Asia/Jerusalem ", "quiet_hours": QUIET},
        {"max_per_day": 0},
        {"max_per_day": 1000},
        {"max_per_day": "3"},
        {"max_per_day": 2.5},
        {"urgent_overrides": "yes"},
    ],
)
def test_bad_preferences_are_a_422_problem(client: FlaskClient, bad: dict[str, Any]) -> None:
    response = post(client, subscription(**bad))
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"


def test_lookup_says_unreachable_once_fcm_said_the_token_is_gone(
    client: FlaskClient, runtime: Runtime
) -> None:
    body = subscription()
    post(client, body)
    with transaction(runtime.sessions) as session:
        session.execute(update(Device).values(state="dead", dead_reason="UNREGISTERED"))
    assert lookup(client, body["token"])["state"] == "unreachable"
    post(client, body)  # registering again revives it
    assert lookup(client, body["token"])["state"] == "active"


def test_an_alert_takes_urgency_locale_translations_and_locales(
    client: FlaskClient,
    keys: dict[str, str],
) -> None:
    view = make_alert(
        client,
        keys["editor"],
        urgency="urgent",
        locale="he",
        translations={"fr": {"headline": "Séisme", "url": "https://news.example/fr"}},
        locales=["he", "fr"],
    )
    assert (view["urgency"], view["locale"], view["locales"]) == ("urgent", "he", ["fr", "he"])
    assert view["translations"] == {"fr": {"headline": "Séisme", "url": "https://news.example/fr"}}
    counts = view["counts"]
    assert (counts["suppressed"], counts["silent"]) == (0, 0)
    assert counts["suppressed_by_reason"] == {"quiet_hours": 0, "daily_cap": 0}


def test_an_alert_defaults_to_normal_urgency_in_the_default_locale(
    client: FlaskClient,
    keys: dict[str, str],
) -> None:
    view = make_alert(client, keys["editor"])
    assert (view["urgency"], view["locale"], view["translations"], view["locales"]) == (
        "normal",
        "en",
        {},
        None,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"translations": {"not a tag": {"headline": "x"}}},
        {"translations": {"f": {"headline": "x"}}},
        {"translations": {"fr": {"headline": "   "}}},
        {"translations": {"fr": {"body": "no headline"}}},
        {"translations": {"fr": {"headline": "x", "url": "javascript:alert(1)"}}},
        {"translations": {"fr": "Séisme"}},
        {"locales": []},
        {"locales": ["français"]},
        {"urgency": "critical"},
        {"locale": "x"},
    ],
)
def test_bad_alert_languages_are_a_422_problem(
    client: FlaskClient,
    keys: dict[str, str],
    bad: dict[str, Any],
) -> None:
    response = client.post("/v1/alerts", json={**ALERT, **bad}, headers=auth(keys["editor"]))
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
