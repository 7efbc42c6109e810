"""Which app(s) a request names, checked against the deployment's apps (a 422 otherwise)."""

from __future__ import annotations

from notifier.http import context
from notifier.http.problems import Problem


def _unknown_apps(unknown: list[str]) -> Problem:
    return Problem(
        422,
        "Unknown app",
        f"This deployment serves no app {', '.join(repr(a) for a in unknown)}.",
        unknown_apps=unknown,
    )


def app_of(requested: str | None) -> str:
    """The app a reader's request names, or the default app when it names none."""
    apps = context.runtime().settings.apps
    if requested is None:
        return apps.default.id
    if apps.get(requested) is None:
        raise _unknown_apps([requested])
    return requested


def apps_of(requested: list[str] | None) -> tuple[str, ...] | None:
    """The apps an alert is restricted to, or None (every app) when it names none."""
    if not requested:
        return None
    unknown = context.runtime().settings.apps.unknown(requested)
    if unknown:
        raise _unknown_apps(unknown)
    return tuple(sorted(set(requested)))
