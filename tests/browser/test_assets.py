"""What notifier serves for the widget, as a site's page and a browser cache receive it."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from notifier.emulator.service_account import write_service_account
from notifier.http.app import create_app
from notifier.http.widget import stand_in_origins
from notifier.runtime import Runtime
from tests.conftest import make_settings

WEB_PUSH = {
    "vapid_key": "BExampleVapidKey",
    "web_api_key": "AIzaExample",
    "web_app_id": "1:42:web:abc",
    "web_messaging_sender_id": "42",
}


def client_for(tmp_path: Path, *, production: bool = True, **env: str) -> FlaskClient:
    """A client of an API configured with ``env``; ``production`` adds FCM credentials.

    Without credentials notifier sends to its own emulator and the widget uses the emulator's
    web push stand-in (the ``standIn`` tests below); with them it takes the real Firebase path.
    """
    if production:
        env["fcm_credentials"] = str(
            write_service_account(
                tmp_path / "service-account.json",
                project_id="notifier-local",
                token_uri="https://oauth2.googleapis.com/token",
            )
        )
    runtime = Runtime.start(make_settings(tmp_path, **env))
    return create_app(runtime=runtime).test_client()


def inlined_config(client: FlaskClient) -> dict[str, object]:
    source = client.get("/widget.js").get_data(as_text=True)
    start = source.index("const CONFIG = ") + len("const CONFIG = ")
    config: dict[str, object] = json.JSONDecoder().raw_decode(source, start)[0]
    return config


def test_the_widget_carries_the_deployments_firebase_web_config(tmp_path: Path) -> None:
    config = inlined_config(client_for(tmp_path, **WEB_PUSH))

    assert config["firebase"] == {
        "apiKey": "AIzaExample",
        "projectId": "notifier-local",
        "messagingSenderId": "42",
        "appId": "1:42:web:abc",
    }
    assert config["vapidKey"] == "BExampleVapidKey"


def test_without_web_push_settings_the_widget_offers_nothing_that_cannot_work(
    tmp_path: Path,
) -> None:
    config = inlined_config(client_for(tmp_path))

    assert config["firebase"] is None


def test_settings_cannot_break_out_of_the_widget_script(tmp_path: Path) -> None:
    client = client_for(tmp_path, **{**WEB_PUSH, "web_api_key": "</script><script>alert(1)"})

    source = client.get("/widget.js").get_data(as_text=True)

    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in source
    assert inlined_config(client)["firebase"]["apiKey"] == "</script><script>alert(1)"  # type: ignore[index]


def test_an_unchanged_widget_is_not_downloaded_again(tmp_path: Path) -> None:
    client = client_for(tmp_path, **WEB_PUSH)
    first = client.get("/widget.js")

    again = client.get("/widget.js", headers={"If-None-Match": first.headers["ETag"]})

    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert again.status_code == 304


def test_the_firebase_bundle_can_be_imported_from_any_sites_page(tmp_path: Path) -> None:
    client = client_for(tmp_path, **WEB_PUSH)
    module = str(inlined_config(client)["firebaseModule"])

    response = client.get("/" + module)

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "getToken" in response.get_data(as_text=True)


def test_the_service_worker_sends_clicks_through_the_public_address(tmp_path: Path) -> None:
    client = client_for(tmp_path, public_url="https://push.news.example")

    response = client.get("/firebase-messaging-sw.js")

    assert response.headers["Cache-Control"] == "no-cache"
    assert 'const NOTIFIER_API = "https://push.news.example";' in response.get_data(as_text=True)


def test_the_demo_article_embeds_the_widget_with_one_script_tag(tmp_path: Path) -> None:
    page = client_for(tmp_path).get("/demo").get_data(as_text=True)

    assert page.count("<script") == 1
    assert '<script src="/widget.js" data-topic="israel"' in page
    assert "Get notifications to stay updated" in page  # the seed's words, as data-strings


# --- the switch to the emulator's web push stand-in ---------------------------------------------


def test_without_fcm_credentials_the_widget_is_told_to_use_the_emulators_stand_in(
    tmp_path: Path,
) -> None:
    config = inlined_config(client_for(tmp_path, production=False, **WEB_PUSH))

    assert config["firebase"] is None
    stand_in = config["standIn"]
    assert isinstance(stand_in, dict)
    assert stand_in["emulator"] == "http://127.0.0.1:9099"
    assert str(stand_in["module"]).startswith("widget/standin.js?v=")


def test_the_stand_in_follows_the_emulator_notifier_sends_to(tmp_path: Path) -> None:
    config = inlined_config(
        client_for(tmp_path, production=False, fcm_endpoint="http://127.0.0.1:19099/")
    )

    assert config["standIn"]["emulator"] == "http://127.0.0.1:19099"  # type: ignore[index]


def test_browsers_can_be_sent_to_the_emulator_by_another_address(tmp_path: Path) -> None:
    config = inlined_config(
        client_for(
            tmp_path,
            production=False,
            fcm_endpoint="http://emulator:9099",
            emulator_public_url="http://127.0.0.1:9099/",
        )
    )

    assert config["standIn"]["emulator"] == "http://127.0.0.1:9099"  # type: ignore[index]


def test_in_stand_in_mode_its_module_can_be_imported_and_the_worker_accepts_its_pushes(
    tmp_path: Path,
) -> None:
    client = client_for(tmp_path, production=False)
    module = str(inlined_config(client)["standIn"]["module"])  # type: ignore[index]

    response = client.get("/" + module)
    worker = client.get("/firebase-messaging-sw.js").get_data(as_text=True)

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "export function createStandIn" in response.get_data(as_text=True)
    assert "const STAND_IN = true;" in worker


def test_a_production_page_loads_nothing_of_the_stand_in(tmp_path: Path) -> None:
    client = client_for(tmp_path, **WEB_PUSH)

    widget = client.get("/widget.js").get_data(as_text=True)
    worker = client.get("/firebase-messaging-sw.js").get_data(as_text=True)
    module = client.get("/widget/standin.js")

    assert inlined_config(client)["standIn"] is None
    assert "standin.js" not in widget
    assert "const STAND_IN = false;" in worker
    assert module.status_code == 404
    assert module.mimetype == "application/problem+json"


def test_the_emulator_lets_this_apis_pages_and_cors_sites_use_the_stand_in(
    tmp_path: Path,
) -> None:
    local = make_settings(tmp_path, port="8123", cors_origins="https://news.example/,*")
    public = make_settings(tmp_path, public_url="https://push.news.example/base")

    assert stand_in_origins(local) == [
        "http://127.0.0.1:8123",
        "http://localhost:8123",
        "https://news.example",
    ]
    assert stand_in_origins(public) == ["https://push.news.example"]
