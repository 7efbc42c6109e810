"""Article events carry urgency, languages and editions into the alert they make."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.test_events_api import (  # noqa: F401 (fixtures)
    deliver,
    published,
    publisher,
    settings,
)


def test_an_urgent_article_in_french_with_translations_makes_an_urgent_edition_alert(
    client: FlaskClient,
    publisher: object,  # noqa: F811
) -> None:
    response = deliver(
        client,
        published(
            urgent=True,
            locale="fr",
            translations={
                "en": {"headline": "Quake", "summary": "Details", "url": "https://news.example/en"}
            },
            locales=["fr", "en"],
        ),
    )
    assert response.status_code == 202, response.json
    alert = response.json["alert"]
    assert (alert["urgency"], alert["locale"], alert["locales"]) == ("urgent", "fr", ["en", "fr"])
    assert alert["translations"] == {
        "en": {"headline": "Quake", "body": "Details", "url": "https://news.example/en"}
    }


def test_an_article_without_them_makes_a_normal_alert_in_the_default_locale(
    client: FlaskClient,
    publisher: object,  # noqa: F811
) -> None:
    alert = deliver(client, published()).json["alert"]
    assert (alert["urgency"], alert["locale"], alert["translations"], alert["locales"]) == (
        "normal",
        "en",
        {},
        None,
    )


def test_a_translation_under_a_malformed_tag_is_a_422(
    client: FlaskClient,
    publisher: object,  # noqa: F811
) -> None:
    response = deliver(client, published(translations={"not a tag": {"headline": "x"}}))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
