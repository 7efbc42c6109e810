"""RFC 9457 problem details: every error the API returns, and the handlers that produce them."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# How long a client should wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 10
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise from any view to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.type = status, title, detail, type_
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    body.update(problem.extensions)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def validation_problem(exc: ValidationError) -> Problem:
    """Describe each invalid field without echoing the submitted value (it may be a token)."""
    errors = [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Problem(422, "Request body is not valid", detail, errors=errors)


def database_unavailable(exc: Exception) -> bool:
    """Connection trouble (worth a retry), as opposed to a bug such as a constraint violation."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and (
        isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
    )


def database_unavailable_problem(detail: str) -> Problem:
    return Problem(
        503,
        "Service Unavailable",
        detail,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return problem_response(validation_problem(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {}
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        if status == 429:
            retry_after = getattr(exc, "retry_after", None) or _retry_after_of(exc)
            if retry_after:
                headers["Retry-After"] = str(retry_after)
        title = exc.name
        detail = exc.description if status != 404 else "No such resource."
        return problem_response(Problem(status, title, detail, headers=headers))

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database(exc: Exception) -> Response:
        # PostgreSQL restarting or failing over: nothing was recorded (the transaction did not
        # commit), so the client is told to retry rather than shown a server error.
        if not database_unavailable(exc):
            return _unexpected(exc)
        log.warning("database unavailable", extra={"fields": {"error": type(exc).__name__}})
        return problem_response(
            database_unavailable_problem("The database is unavailable; retry later.")
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(Problem(500, "Internal Server Error", "An unexpected error."))


def _retry_after_of(exc: HTTPException) -> str | None:
    response = exc.get_response()
    return response.headers.get("Retry-After")
