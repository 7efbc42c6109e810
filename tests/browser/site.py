"""A news site of its own origin (another port on loopback) that embeds the widget."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class NewsSite:
    """Serves ``pages`` (path -> (content type, body)); what a site's web server would."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = site.pages.get(self.path, ("text/plain", "not found"))
                self.send_response(200 if self.path in site.pages else 404)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, name="news-site", daemon=True).start()

    def publish(self, api: str, article: str) -> None:
        """An article with the widget's one script tag, and the one-line service worker."""
        self.pages = {
            article: (
                "text/html",
                "<!doctype html><title>Ceasefire talks</title><main><h1>Ceasefire talks</h1>"
                f'<script src="{api}/widget.js" data-topic="israel" async></script></main>',
            ),
            "/firebase-messaging-sw.js": (
                "text/javascript",
                f'importScripts("{api}/firebase-messaging-sw.js");',
            ),
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
