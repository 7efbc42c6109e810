"""The one way a view reaches the process's :class:`~notifier.runtime.Runtime`.

``create_app`` installs the runtime on the Flask app; views call :func:`runtime` instead of
reading ``current_app.extensions`` themselves, so the key and the type live in one place.
"""

from __future__ import annotations

from flask import Flask, current_app

from notifier.runtime import Runtime

_EXTENSION = "notifier"


def install(app: Flask, runtime: Runtime) -> None:
    """Make ``runtime`` the one that :func:`runtime` returns inside ``app``'s requests."""
    app.extensions[_EXTENSION] = runtime


def runtime() -> Runtime:
    """The runtime of the app handling the current request (or app context)."""
    found = current_app.extensions[_EXTENSION]
    if not isinstance(found, Runtime):  # only install() writes the key
        raise TypeError(
            f"app.extensions[{_EXTENSION!r}] is a {type(found).__name__}, not a Runtime"
        )
    return found
