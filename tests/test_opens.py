"""Clicks on notifications: ``GET /o/<alert>`` counts an open and goes on to the article."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Alert
from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings

ARTICLE = "https://news.example/2025/01/ceasefire-agreed"


FRENCH = "https://news.example/fr/2025/01/cessez-le-feu"


def sent_alert(
    runtime: Runtime,
    *,
    url: str = ARTICLE,
    sent: int = 4,
    translations: dict[str, dict[str, str]] | None = None,
) -> str:
    """An alert FCM accepted for ``sent`` devices; returns its id."""
    with transaction(runtime.sessions) as session:
        alert = create_alert(
            session,
            AlertDraft(
                headline="Ceasefire agreed",
                url=url,
                topics=("israel",),
                translations=translations or {},
            ),
            default_hold=0,
            default_ttl=3600,
        )
        alert.status, alert.audience, alert.sent = "sent", sent, sent
        return alert.id


def opens(runtime: Runtime, alert_id: str) -> int:
    with transaction(runtime.sessions) as session:
        return session.get_one(Alert, alert_id).opens


def test_an_open_is_counted_and_the_reader_goes_to_the_article(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert_id = sent_alert(runtime)

    response = client.get(f"/o/{alert_id}")

    assert response.status_code == 302
    assert response.headers["Location"] == ARTICLE
    assert response.headers["Cache-Control"] == "no-store"
    assert opens(runtime, alert_id) == 1


def test_opens_and_open_rate_show_on_the_alert(client: FlaskClient, runtime: Runtime) -> None:
    alert_id = sent_alert(runtime, sent=4)
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "opens test")

    client.get(f"/o/{alert_id}")
    view = client.get(f"/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {key}"}).json

    assert view is not None
    assert (view["opens"], view["open_rate"]) == (1, 0.25)


def test_an_alert_not_yet_sent_has_no_open_rate(client: FlaskClient, runtime: Runtime) -> None:
    alert_id = sent_alert(runtime, sent=0)
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, "editor", "opens test")

    view = client.get(f"/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {key}"}).json

    assert view is not None
    assert view["open_rate"] is None


def test_an_unknown_alert_is_a_not_found_problem(client: FlaskClient) -> None:
    response = client.get("/o/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


def test_the_redirect_only_ever_goes_to_the_alerts_own_url(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert_id = sent_alert(runtime)

    response = client.get(
        f"/o/{alert_id}?to=https://evil.example/&url=https://evil.example/&next=https://evil.example/",
        headers={"Referer": "https://evil.example/"},
    )

    assert response.headers["Location"] == ARTICLE


def test_a_click_on_a_translation_lands_on_the_translations_url(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert_id = sent_alert(
        runtime, translations={"fr": {"headline": "Cessez-le-feu", "url": FRENCH}}
    )

    response = client.get(f"/o/{alert_id}", query_string={"to": FRENCH})

    assert (response.status_code, response.headers["Location"]) == (302, FRENCH)
    assert opens(runtime, alert_id) == 1


def test_a_url_of_another_alerts_translation_lands_on_this_alerts_own(
    client: FlaskClient, runtime: Runtime
) -> None:
    sent_alert(runtime, translations={"fr": {"headline": "Cessez-le-feu", "url": FRENCH}})
    alert_id = sent_alert(runtime, translations={"fr": {"headline": "Cessez-le-feu"}})

    response = client.get(f"/o/{alert_id}", query_string={"to": FRENCH})

    assert response.headers["Location"] == ARTICLE
    assert opens(runtime, alert_id) == 1


def test_an_alert_whose_url_is_not_a_web_page_is_never_redirected_to(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert_id = sent_alert(runtime, url="javascript:alert(1)")

    response = client.get(f"/o/{alert_id}")

    assert response.status_code == 404
    assert opens(runtime, alert_id) == 0


def test_opens_at_the_same_moment_are_all_counted(app: Flask, runtime: Runtime) -> None:
    alert_id = sent_alert(runtime)

    def click(_: int) -> int:
        return app.test_client().get(f"/o/{alert_id}").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(click, range(40)))

    assert statuses == [302] * 40
    assert opens(runtime, alert_id) == 40


def test_a_flood_of_opens_from_one_address_is_limited(db_url: str, tmp_path: Path) -> None:
    runtime = Runtime.start(
        make_settings(tmp_path, database_url=db_url, rate_limits="opens=2/minute")
    )
    try:
        client = create_app(runtime=runtime).test_client()
        alert_id = sent_alert(runtime)

        statuses = [client.get(f"/o/{alert_id}").status_code for _ in range(3)]
        limited = client.get(f"/o/{alert_id}")
    finally:
        runtime.close()

    assert statuses == [302, 302, 429]
    assert "Retry-After" in limited.headers
