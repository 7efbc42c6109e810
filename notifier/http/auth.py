"""Bearer API keys on editor and ops routes: 401 without a valid key, 403 for the wrong role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from notifier.core.apikeys import Principal, authenticate
from notifier.core.db import transaction
from notifier.core.logs import bind
from notifier.http import context
from notifier.http.problems import Problem

F = TypeVar("F", bound=Callable[..., Any])


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="notifier"'}
    )


def current_principal() -> Principal:
    principal: Principal = g.principal
    return principal


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow callers whose key has one of ``roles`` (admin keys are allowed everywhere)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, key = header.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise _unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
            with transaction(context.runtime().sessions) as session:
                principal = authenticate(session, key.strip())
            if principal is None:
                raise _unauthorized("The API key is unknown or revoked.")
            if not principal.has_role(*roles):
                raise Problem(403, "Forbidden", f"This needs a key with role {' or '.join(roles)}.")
            g.principal = principal
            bind(api_key=principal.prefix)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
