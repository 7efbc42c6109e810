"""What notifier serves for the widget, as a site's page and a browser cache receive it."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from notifier.http.app import create_app
from notifier.runtime import Runtime
from tests.conftest import make_settings

WEB_PUSH = {
    "vapid_key": "BExampleVapidKey",
    "web_api_key": "AIzaExample",
    "web_app_id": "1:42:web:abc",
    "web_messaging_sender_id": "42",
}


def client_for(tmp_path: Path, **env: str) -> FlaskClient:
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

    assert '<script src="/widget.js" data-topic="israel" async></script>' in page
