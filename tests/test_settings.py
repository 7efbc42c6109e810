"""Configuration comes from NOTIFIER_* variables only; a bad one stops start-up, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.core.settings import SettingsError, load_settings
from notifier.subscriptions.topics import CatalogueError, load_catalogue


def test_embedded_defaults_need_nothing_configured() -> None:
    settings = load_settings({})
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/var/notifier.db")
    assert settings.effective_broker_url == "filesystem://"
    assert settings.effective_fcm_endpoint == "http://127.0.0.1:9099"
    assert settings.port == 8000 and settings.emulator_port == 9099
    assert settings.hold_seconds == 0


def test_postgres_urls_use_the_psycopg3_driver() -> None:
    settings = load_settings({"NOTIFIER_DATABASE_URL": "postgresql://u@db:5432/news"})
    assert settings.effective_database_url == "postgresql+psycopg://u@db:5432/news"


def test_lists_and_rate_limits_are_parsed() -> None:
    settings = load_settings(
        {
            "NOTIFIER_WEBHOOK_SECRETS": "whsec_Zm9vYmFyYmF6cXV4, whsec_cXV4YmF6YmFyZm9v",
            "NOTIFIER_RATE_LIMITS": "subscriptions=10/minute; events=5 per second",
            "NOTIFIER_CORS_ORIGINS": "https://a.example,https://b.example",
        }
    )
    assert settings.webhook_secrets == ["whsec_Zm9vYmFyYmF6cXV4", "whsec_cXV4YmF6YmFyZm9v"]
    assert settings.rate_limits["subscriptions"] == "10/minute"
    assert settings.rate_limits["events"] == "5 per second"
    assert settings.rate_limits["lookup"]  # untouched scopes keep their defaults
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOTIFIER_PORT": "eighty"}, "NOTIFIER_PORT"),
        ({"NOTIFIER_HOLD_SECONDS": "-1"}, "NOTIFIER_HOLD_SECONDS"),
        ({"NOTIFIER_WEBHOOK_SECRETS": "hunter2"}, "NOTIFIER_WEBHOOK_SECRETS"),
        ({"NOTIFIER_RATE_LIMITS": "subscriptions=lots"}, "NOTIFIER_RATE_LIMITS"),
        ({"NOTIFIER_DATABASE_URL": "not a url"}, "NOTIFIER_DATABASE_URL"),
        ({"NOTIFIER_LOG_LEVEL": "LOUD"}, "NOTIFIER_LOG_LEVEL"),
        ({"NOTIFIER_FCM_CREDENTIALS": "/nonexistent/sa.json"}, "NOTIFIER_FCM_CREDENTIALS"),
        ({"NOTIFIER_DATABSE_URL": "sqlite://"}, "NOTIFIER_DATABSE_URL"),
    ],
)
def test_bad_values_stop_startup_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_test_suite_variables_are_not_mistaken_for_typos() -> None:
    load_settings({"NOTIFIER_TEST_DATABASE_URL": "x", "NOTIFIER_REQUIRE_SERVICES": "1"})


def test_the_shipped_topic_catalogue_is_valid() -> None:
    catalogue = load_catalogue(Path("config/topics.toml"))
    slugs = [t.slug for t in catalogue]
    assert {"breaking", "israel", "world"} <= set(slugs)
    assert next(t for t in catalogue if t.slug == "breaking").alerting


@pytest.mark.parametrize(
    "content",
    [
        "not toml [",
        "[[topic]]\nslug = 'Bad Slug'\nname = 'x'\n",
        "[[topic]]\nslug = 'a'\nname = 'A'\n[[topic]]\nslug = 'a'\nname = 'B'\n",
        "[[topic]]\nslug = 'a'\nname = 'A'\ncolour = 'red'\n",
        "title = 'no topics'\n",
    ],
    ids=["syntax", "slug", "duplicate", "unknown-key", "empty"],
)
def test_a_malformed_catalogue_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(content)
    with pytest.raises(CatalogueError, match=str(path)):
        load_catalogue(path)
