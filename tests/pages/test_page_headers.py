"""The pages are served so that data can never run as code: a strict CSP and no inline script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from notifier.http.pages import STATIC

PAGES = ("/console", "/dashboard")
SCRIPTS = sorted(
    p for area in ("console", "dashboard", "common") for p in (STATIC / area).glob("*.js")
)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_allows_scripts_from_this_origin_only(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    assert all('src="/ui/' in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\son\w+\s*=", html)  # no inline event handlers
    assert " style=" not in html


def test_page_assets_are_served_with_their_type_and_nothing_else_is(client: FlaskClient) -> None:
    script = client.get("/ui/console/console.js")
    style = client.get("/ui/common/base.css")

    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert style.status_code == 200 and style.mimetype == "text/css"
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/ui/console/index.html").status_code == 404
    assert client.get("/ui/vendor/firebase-messaging.js").status_code == 404
    assert client.get("/ui/console/..%2Fdashboard%2Fdashboard.js").status_code == 404


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_page_scripts_never_parse_data_as_html(script: Path) -> None:
    source = script.read_text(encoding="utf-8")

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, f"{script.name} uses {sink}"
