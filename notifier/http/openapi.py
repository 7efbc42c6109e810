"""The API's OpenAPI description, served as-is (``/openapi.yaml``) and as a listing (``/docs/api``).

``notifier/openapi.yaml`` is the one copy: it ships as package data and is read through
:mod:`importlib.resources`, so a checkout and an installed wheel serve the same file, and
``tests/test_openapi.py`` holds it to the app's real routes and validation rules.

The listing is built by a narrow line reader instead of a YAML parser so that the API needs no
YAML library at run time for one documentation page. It relies on the file's layout (paths at
two spaces under ``paths:``, methods at four, their keys at six); the test compares what it reads
with a real YAML parser's view, so a layout change that would break it fails there first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from importlib import resources

from flask import Blueprint, Response, request, url_for

bp = Blueprint("openapi", __name__)

SPEC_PACKAGE = "notifier"
SPEC_NAME = "openapi.yaml"

# The page has no script at all; inline CSS is its only style, so nothing else may load.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PATH_LINE = re.compile(r"^  (/\S*):\s*$")
_METHOD_LINE = re.compile(rf"^    ({'|'.join(_METHODS)}):\s*$")
_FIELD_LINE = re.compile(r"^      (summary|x-required-roles):\s*(.*?)\s*$")
_INFO_LINE = re.compile(r"^  (title|version):\s*(.*?)\s*$")


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


def _scalar(raw: str) -> str:
    """A plain or quoted one-line YAML scalar, as the file writes them."""
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    return raw


def _flow_list(raw: str) -> tuple[str, ...]:
    """``[editor, ops]`` -> ``("editor", "ops")``."""
    inner = raw.strip().removeprefix("[").removesuffix("]")
    return tuple(_scalar(item.strip()) for item in inner.split(",") if item.strip())


def read_info(text: str) -> dict[str, str]:
    """``info.title`` and ``info.version``."""
    info: dict[str, str] = {}
    in_info = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            in_info = line.rstrip() == "info:"
            continue
        match = _INFO_LINE.match(line) if in_info else None
        if match:
            info[match.group(1)] = _scalar(match.group(2))
    return info


def read_operations(text: str) -> list[Operation]:
    """Every operation under ``paths:``, in file order, with its summary and roles."""
    operations: list[Operation] = []
    in_paths = False
    path: str | None = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            in_paths = line.rstrip() == "paths:"
            path = None
            continue
        if not in_paths:
            continue
        if path_match := _PATH_LINE.match(line):
            path = path_match.group(1)
        elif (method_match := _METHOD_LINE.match(line)) and path is not None:
            operations.append(Operation(method_match.group(1).upper(), path))
        elif (field := _FIELD_LINE.match(line)) and operations and operations[-1].path == path:
            last = operations[-1]
            name, value = field.groups()
            if name == "summary":
                operations[-1] = Operation(last.method, last.path, _scalar(value), last.roles)
            else:
                operations[-1] = Operation(last.method, last.path, last.summary, _flow_list(value))
    return operations


def render_listing(text: str, spec_url: str) -> str:
    """The HTML page; every value from the file is escaped, whatever it holds."""
    info = read_info(text)
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    rows = "\n".join(
        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>".format(
            escape(op.method),
            escape(op.path),
            escape(op.summary),
            escape(", ".join(op.roles) or "no key"),
        )
        for op in read_operations(text)
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
