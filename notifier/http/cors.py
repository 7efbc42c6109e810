"""CORS for the reader-facing endpoints: only origins in ``NOTIFIER_CORS_ORIGINS`` get headers."""

from __future__ import annotations

from flask import Flask, Response, request

PUBLIC_PREFIXES = ("/v1/subscriptions", "/v1/topics", "/o/")


def init_cors(app: Flask, allowed: list[str]) -> None:
    origins = frozenset(o.rstrip("/") for o in allowed)

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(PUBLIC_PREFIXES):
            return response
        response.vary.add("Origin")
        if origin.rstrip("/") not in origins and "*" not in origins:
            return response
        response.headers["Access-Control-Allow-Origin"] = origin
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
