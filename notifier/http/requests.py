"""Reading request bodies: JSON only, read whole up to a cap, validated into pydantic models.

Every JSON route reads its body through here, so every one of them answers the same 4xx
problem for the same bad input: 413 for a body over the cap (declared or chunked), 415 for a
media type or charset other than JSON in UTF-8, 400 for bytes that are not JSON (or nest too
deeply to read), 422 for JSON of the wrong shape. None of these can become a 500.
"""

from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel
from werkzeug.exceptions import RequestEntityTooLarge

from notifier.http.problems import Problem

M = TypeVar("M", bound=BaseModel)

_READ_CHUNK = 64 * 1024
# RFC 8259: JSON exchanged between systems is UTF-8. ASCII is a subset, so it is accepted too.
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def json_body(model: type[M]) -> M:
    """Parse the request's JSON body into ``model`` or raise the right problem.

    415 for anything but JSON (forms would bypass schema checks), 400 for broken JSON, 422 (via
    pydantic's ValidationError) for a well-formed body of the wrong shape.
    """
    require_json_media_type()
    limit = request.max_content_length
    data = decode_json(read_body(limit) if limit is not None else request.get_data(cache=True))
    if not isinstance(data, dict):
        raise Problem(422, "Request body is not valid", "The body must be a JSON object.")
    return model.model_validate(data)


def require_json_media_type() -> None:
    """415 unless the body is declared ``application/json`` in UTF-8 (or with no charset)."""
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported Media Type", "Send the body as application/json.")
    require_utf8_charset()


def require_utf8_charset() -> None:
    """415 for a body declared in a charset other than UTF-8.

    A declared charset is honoured rather than ignored: reading a latin-1 body as UTF-8 would
    store different text than the client sent (or refuse good text as malformed).
    """
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in _UTF8_CHARSETS:
        raise Problem(
            415,
            "Unsupported Media Type",
            "JSON bodies must be UTF-8; send charset=utf-8 or no charset.",
        )


def read_body(limit: int) -> bytes:
    """The raw body read whole, or a 413 once it passes ``limit`` bytes; never a truncated body.

    A declared Content-Length is checked before reading. A chunked body (no Content-Length) is
    read in pieces until it ends or passes the limit: Werkzeug's own ``get_data`` stops quietly at
    ``max_content_length`` and returns the first bytes, so a padded body would be parsed from its
    head. Werkzeug also enforces the cap on the stream, which is why its 413 is caught here too.
    """
    too_large = Problem(413, "Content Too Large", f"Request bodies are limited to {limit} bytes.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := request.stream.read(min(_READ_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise too_large
    except RequestEntityTooLarge:
        raise too_large from None
    return b"".join(chunks)


def decode_json(raw: bytes) -> object:
    """Decode UTF-8 JSON as JSON Schema reads it, or raise a 400 problem.

    Python's parser recurses once per nesting level, so a body nested about a thousand deep
    raises ``RecursionError``; that is bad input like any other, not a server fault. No request
    of this API nests more than a few levels. ``NaN`` and ``Infinity`` are not JSON and are
    refused; a number with a zero fraction (``492.0``) is an integer to JSON Schema, so it is
    read as one and the strict request models accept it wherever the description says integer.
    """
    try:
        return json.loads(raw.decode("utf-8"), parse_float=_number, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Malformed JSON", "The request body is not valid JSON.") from None
    except RecursionError:
        raise Problem(
            400, "Malformed JSON", "The request body is nested too deeply to read."
        ) from None


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
