"""Bearer API keys on editor and ops routes: 401 without a valid key, 403 for the wrong role.

Wrong keys are counted per address (``auth_failures`` in ``NOTIFIER_RATE_LIMITS``, shared across
the API's processes); past the limit they get 429 with Retry-After instead of 401. A valid key
is never refused by that counter, by choice: keys hold 192 random bits, so no rate of guessing
finds one, while the likeliest source of repeated 401s is a client left with a revoked key in
the newsroom's own office or CMS cluster, behind the same address as the editors. Refusing
every key from that address would let it (or an attacker sharing the address) silence alerts
during breaking news. A missing header is not a guess and is not counted. The presented key is
never logged; only a valid key's public prefix is.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from notifier.core.apikeys import Principal, authenticate
from notifier.core.db import transaction
from notifier.core.logs import bind
from notifier.http import context
from notifier.http.limits import keyed_limits, too_many
from notifier.http.problems import Problem

F = TypeVar("F", bound=Callable[..., Any])


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="notifier"'}
    )


def _count_failure() -> None:
    """Count a wrong key against the caller's address; 429 once there were too many."""
    limits = keyed_limits()
    if limits is None:
        return
    wait = limits.auth_failures.hit(request.remote_addr or "unknown")
    if wait is not None:
        raise too_many(wait, "Too many wrong API keys from this address; retry later.")


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
                _count_failure()
                raise _unauthorized("The API key is unknown or revoked.")
            if not principal.has_role(*roles):
                raise Problem(403, "Forbidden", f"This needs a key with role {' or '.join(roles)}.")
            g.principal = principal
            bind(api_key=principal.prefix)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
