"""The API's OpenAPI description, served as-is (``/openapi.yaml``) and as a listing (``/docs/api``).

``notifier/openapi.yaml`` is the one copy: it ships as package data and is read through
:mod:`importlib.resources`, so a checkout and an installed wheel serve the same file, and
``tests/test_openapi.py`` holds it to the app's real routes and validation rules.

The listing reads the file with PyYAML's safe loader (a runtime dependency for this page), so it
sees exactly what any other OpenAPI tool sees, whatever the file's layout or quoting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, request, url_for

bp = Blueprint("openapi", __name__)

SPEC_PACKAGE = "notifier"
SPEC_NAME = "openapi.yaml"

# The page has no script at all; inline CSS is its only style, so nothing else may load.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

# A path item's keys that are operations; the others (``parameters``, ``summary``, ...) are not.
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True, slots=True)
class Operation:
    """One line of the listing: what a reader scans for."""

    method: str
    path: str
    summary: str = ""
    roles: tuple[str, ...] = ()


def spec_bytes() -> bytes:
    """The description's bytes from the package; read per request, as it is small and may change."""
    return (resources.files(SPEC_PACKAGE) / SPEC_NAME).read_bytes()


def load_spec(text: str) -> dict[str, Any]:
    """The description as data; ValueError when it is not a YAML mapping."""
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ValueError("the OpenAPI description is not a mapping")
    return loaded


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def read_info(spec: Mapping[str, Any]) -> dict[str, str]:
    """``info.title`` and ``info.version``, as text (YAML reads ``version: 1`` as a number)."""
    info = _mapping(spec.get("info"))
    return {key: str(info[key]) for key in ("title", "version") if info.get(key) is not None}


def read_operations(spec: Mapping[str, Any]) -> list[Operation]:
    """Every operation under ``paths``, in file order, with its summary and roles."""
    operations: list[Operation] = []
    for path, item in _mapping(spec.get("paths")).items():
        for method, operation in _mapping(item).items():
            if method not in _METHODS:
                continue
            fields = _mapping(operation)
            roles = fields.get("x-required-roles") or ()
            operations.append(
                Operation(
                    method.upper(),
                    str(path),
                    str(fields.get("summary") or ""),
                    tuple(str(role) for role in roles),
                )
            )
    return operations


def render_listing(text: str, spec_url: str) -> str:
    """The HTML page; every value from the file is escaped, whatever it holds."""
    spec = load_spec(text)
    info = read_info(spec)
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    rows = "\n".join(
        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
            escape(op.method),
            escape(op.path),
            escape(op.summary),
            escape(", ".join(op.roles) or "no key"),
        )
        for op in read_operations(spec)
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} HTTP API</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow-x: auto; }}
</style>
</head>
<body>
<h1>{escape(title)} HTTP API</h1>
<p>The full OpenAPI 3.1 description: <a href="{escape(spec_url)}">{escape(spec_url)}</a>.
Roles are API key roles; an admin key is accepted everywhere.</p>
<table>
<thead><tr><th>method</th><th>path</th><th>summary</th><th>API key roles</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<h2>The description</h2>
<pre>{escape(text)}</pre>
</body>
</html>
"""


@bp.get("/openapi.yaml")
def spec() -> Response:
    """The file's bytes, unchanged.

    Any origin may read it: it is public, takes no credentials, and viewers on other origins (an
    API explorer, a client generator in a browser) are the point of publishing it.
    """
    response = Response(spec_bytes(), mimetype="application/yaml")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    response.make_conditional(request)
    return response


@bp.get("/docs/api")
def page() -> Response:
    """A readable listing for people, with no external assets (it works offline and behind CSP)."""
    text = spec_bytes().decode("utf-8")
    response = Response(
        render_listing(text, url_for("openapi.spec")), mimetype="text/html", status=200
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response
