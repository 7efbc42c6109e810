"""The inbox page: received notifications shown the way a phone would show them, newest first.

The page is rendered on the server with every text escaped (a headline is untrusted input from
a CMS), then keeps itself current by polling ``/emulator/messages?since=``; the script builds new
cards with ``textContent`` only, so no received text is ever parsed as HTML.
"""

from __future__ import annotations

import html
import json
import time
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from notifier.emulator.state import STATE_KEY, ReceivedMessage

_INITIAL_CARDS = 50


def _first(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def _safe_url(url: str | None) -> str | None:
    # Only web URLs may become links or images: a javascript: URL from a CMS must stay inert.
    if url and url.startswith(("https://", "http://")):
        return url
    return None


def display(item: ReceivedMessage) -> dict[str, Any]:
    """What a phone would show for ``item``: platform overrides win over the common fields."""
    msg = item.message
    common = msg.get("notification") or {}
    android = (msg.get("android") or {}).get("notification") or {}
    apns = msg.get("apns") or {}
    aps = (apns.get("payload") or {}).get("aps") or {}
    alert = aps["alert"] if isinstance(aps.get("alert"), dict) else {}
    webpush = msg.get("webpush") or {}
    web_note = webpush.get("notification") or {}
    data = msg.get("data") or {}
    apns_image = (apns.get("fcm_options") or {}).get("image")
    web_link = (webpush.get("fcm_options") or {}).get("link")
    if item.target_kind in ("token", "fid"):
        target = _mask(item.target)
    else:
        target = f"{item.target_kind}: {item.target}"
    return {
        "title": _first(android.get("title"), alert.get("title"), web_note.get("title"),
                        common.get("title")),
        "body": _first(android.get("body"), alert.get("body"), web_note.get("body"),
                       common.get("body")),
        "image": _safe_url(_first(android.get("image"), apns_image, web_note.get("image"),
                                  common.get("image"))),
        "link": _safe_url(_first(web_link, data.get("url"))),
        "platform": item.platform,
        "target": target,
        "received_at": item.received_at,
    }  # fmt: skip


def _mask(token: str) -> str:
    return token if len(token) <= 12 else f"{token[:8]}…{token[-4:]}"


def render_card(item: ReceivedMessage) -> str:
    """One notification as escaped HTML; the script in inbox.html builds the same structure."""
    shown = display(item)
    esc = html.escape
    when = time.strftime("%H:%M:%S", time.localtime(shown["received_at"]))
    image = f'<img class="image" src="{esc(shown["image"])}" alt="">' if shown["image"] else ""
    link = (
        f'<a class="link" href="{esc(shown["link"])}" rel="noopener noreferrer" '
        f'target="_blank">{esc(shown["link"])}</a>'
        if shown["link"]
        else ""
    )
    return (
        f'<article class="card" data-seq="{item.seq}">'
        f'<header><span class="platform">{esc(shown["platform"])}</span>'
        f'<span class="target">{esc(shown["target"])}</span>'
        f"<time>{esc(when)}</time></header>"
        f'<h2 class="title">{esc(shown["title"] or "")}</h2>'
        f'<p class="body">{esc(shown["body"] or "")}</p>{image}{link}</article>'
    )


@cache
def _template() -> str:
    return (resources.files("notifier.emulator") / "static" / "inbox.html").read_text("utf-8")


def render_inbox(items: list[ReceivedMessage], last_seq: int) -> str:
    """The whole page with ``items`` (oldest first) shown newest first."""
    cards = "".join(render_card(item) for item in reversed(items))
    return _template().replace("{{CARDS}}", cards).replace("{{LAST_SEQ}}", json.dumps(last_seq))


async def inbox_page(request: web.Request) -> web.Response:
    """``GET /``: the inbox."""
    state = request.app[STATE_KEY]
    page = render_inbox(state.newest(_INITIAL_CARDS), state.last_seq)
    return web.Response(
        text=page,
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'self'; img-src * data:; "
                 "style-src 'unsafe-inline'; script-src 'unsafe-inline'"},
    )  # fmt: skip
