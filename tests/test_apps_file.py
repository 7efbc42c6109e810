"""Several apps in one deployment: the apps file, its checks, and the implicit default app."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from notifier.cli.main import main
from notifier.core.apps import DEFAULT_APP, DEFAULT_QUOTA_PER_MINUTE
from notifier.core.settings import SettingsError, load_settings


def _credentials(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("{}", encoding="utf-8")  # only its existence is checked at start-up
    return path


def _apps_file(folder: Path, text: str) -> Path:
    path = folder / "apps.toml"
    path.write_text(text, encoding="utf-8")
    return path


TWO_APPS = """
[[app]]
id = "en"
project_id = "news-en"
credentials = "en.json"
quota_per_minute = 3000

[[app]]
id = "fr"
project_id = "news-fr"
credentials = "{fr}"
"""


def test_without_a_file_the_default_app_is_built_from_the_fcm_settings(tmp_path: Path) -> None:
    creds = _credentials(tmp_path, "sa.json")
    settings = load_settings(
        {
            "NOTIFIER_FCM_CREDENTIALS": str(creds),
            "NOTIFIER_FCM_PROJECT_ID": "newsroom",
            "NOTIFIER_FCM_QUOTA_PER_MINUTE": "1200",
        }
    )
    (app,) = settings.apps.all
    assert settings.apps.default is app
    assert (app.id, app.project_id, app.credentials, app.quota_per_minute) == (
        DEFAULT_APP,
        "newsroom",
        creds,
        1200,
    )


def test_embedded_mode_still_has_one_default_app_on_the_emulator() -> None:
    settings = load_settings({})
    assert settings.apps.ids == (DEFAULT_APP,)
    assert settings.apps.default.credentials is None
    assert settings.effective_fcm_endpoint == "http://127.0.0.1:9099"


def test_the_apps_file_lists_each_app_with_its_own_project_credentials_and_quota(
    tmp_path: Path,
) -> None:
    _credentials(tmp_path, "en.json")
    fr = _credentials(tmp_path, "fr.json")
    path = _apps_file(tmp_path, TWO_APPS.format(fr=fr))
    settings = load_settings({"NOTIFIER_APPS_FILE": str(path)})
    en_app, fr_app = settings.apps.all
    assert (en_app.id, en_app.project_id, en_app.quota_per_minute) == ("en", "news-en", 3000)
    # A relative path is read from the apps file's own folder, not the working directory.
    assert en_app.credentials == tmp_path / "en.json"
    assert (fr_app.id, fr_app.credentials) == ("fr", fr)
    assert fr_app.quota_per_minute == DEFAULT_QUOTA_PER_MINUTE
    # Without an app called "default", the first one takes requests that name no app, and
    # sends to the devices stored under "default" (from before the apps file).
    assert settings.apps.default is en_app
    assert settings.apps.sending("default") is en_app
    assert settings.apps.sending("fr") is fr_app
    assert settings.apps.sending("de") is None
    assert settings.apps.unknown(["fr", "de", "xx", "de"]) == ["de", "xx"]
    # With an apps file and no endpoint, sends go to Google, not to a local emulator.
    assert settings.effective_fcm_endpoint is None


def test_an_app_called_default_is_the_default_wherever_it_is_listed(tmp_path: Path) -> None:
    _credentials(tmp_path, "a.json")
    path = _apps_file(
        tmp_path,
        "[[app]]\nid='web'\nproject_id='p1'\ncredentials='a.json'\n"
        "[[app]]\nid='default'\nproject_id='p2'\ncredentials='a.json'\n",
    )
    settings = load_settings({"NOTIFIER_APPS_FILE": str(path)})
    assert settings.apps.default.id == "default"
    assert settings.apps.default.project_id == "p2"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not toml [", "not a readable TOML file"),
        ("title = 'x'\n", "unknown top-level key(s) title"),
        ("app = []\n", "at least one [[app]]"),
        (
            "[[app]]\nid='en'\nproject_id='p'\ncredentials='c.json'\ncolour='red'\n",
            "unknown key(s) colour",
        ),
        ("[[app]]\nid='en'\ncredentials='c.json'\n", "missing project_id"),
        ("[[app]]\nid='En App'\nproject_id='p'\ncredentials='c.json'\n", "is not a slug"),
        (
            "[[app]]\nid='en'\nproject_id='p'\ncredentials='c.json'\n" * 2,
            "duplicate app id 'en'",
        ),
        (
            "[[app]]\nid='en'\nproject_id='p'\ncredentials='gone.json'\n",
            "no such credentials file",
        ),
        (
            "[[app]]\nid='en'\nproject_id='p'\ncredentials='c.json'\nquota_per_minute=0\n",
            "quota_per_minute must be a whole number",
        ),
        (
            "[[app]]\nid='en'\nproject_id='p'\ncredentials='c.json'\nquota_per_minute='fast'\n",
            "quota_per_minute must be a whole number",
        ),
    ],
)
def test_an_invalid_apps_file_stops_start_up_naming_the_problem(
    tmp_path: Path, text: str, says: str
) -> None:
    _credentials(tmp_path, "c.json")
    path = _apps_file(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings({"NOTIFIER_APPS_FILE": str(path)})
    assert "NOTIFIER_APPS_FILE" in str(caught.value)
    assert says in str(caught.value)


def test_a_missing_apps_file_stops_start_up() -> None:
    with pytest.raises(SettingsError, match=r"NOTIFIER_APPS_FILE.*no such file"):
        load_settings({"NOTIFIER_APPS_FILE": "/nonexistent/apps.toml"})


def test_the_cli_exits_2_on_an_invalid_apps_file(tmp_path: Path) -> None:
    path = _apps_file(tmp_path, "[[app]]\nid='en'\n")
    result = CliRunner().invoke(main, ["db", "current"], env={"NOTIFIER_APPS_FILE": str(path)})
    assert result.exit_code == 2
    assert "NOTIFIER_APPS_FILE" in result.output
    assert "missing project_id, credentials" in result.output
