"""The inbox page shows notifications as a phone would, newest first, never running their text."""

from __future__ import annotations

from collections.abc import Callable

import requests

from tests.emulator.helpers import a_message


def test_inbox_shows_notifications_newest_first(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(notification={"title": "Older story", "body": "b"})})
    send({"message": a_message(notification={"title": "Newer story", "body": "b",
                                              "image": "https://img.example/x.jpg"})})  # fmt: skip
    page = requests.get(f"{emulator}/", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.text.index("Newer story") < page.text.index("Older story")
    assert 'src="https://img.example/x.jpg"' in page.text
    assert "https://news.example/a1" in page.text  # the article link from data.url


def test_inbox_escapes_script_in_headlines(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(notification={"title": "<script>alert(1)</script>", "body": "&"})})
    page = requests.get(f"{emulator}/", timeout=5).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page


def test_inbox_never_links_to_javascript_urls(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(data={"url": "javascript:alert(1)"})})
    assert "javascript:alert" not in requests.get(f"{emulator}/", timeout=5).text


def test_inbox_feed_gives_display_fields_for_live_updates(
    emulator: str, send: Callable[..., requests.Response]
) -> None:
    send({"message": a_message(android={"notification": {"title": "Android title"}})})
    (item,) = requests.get(f"{emulator}/emulator/messages", timeout=5).json()["messages"]
    assert item["display"]["title"] == "Android title"
    assert item["display"]["platform"] == "android"
    assert item["display"]["link"] == "https://news.example/a1"
