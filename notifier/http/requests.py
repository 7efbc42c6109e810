"""Reading request bodies: JSON only, size-capped, validated into pydantic models."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel

from notifier.http.problems import Problem

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> M:
    """Parse the request's JSON body into ``model`` or raise the right problem.

    415 for anything but JSON (forms would bypass schema checks), 400 for broken JSON, 422 (via
    pydantic's ValidationError) for a well-formed body of the wrong shape.
    """
    if request.mimetype != "application/json":
        raise Problem(415, "Unsupported Media Type", "Send the body as application/json.")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Malformed JSON", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Problem(422, "Request body is not valid", "The body must be a JSON object.")
    return model.model_validate(data)
