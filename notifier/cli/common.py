"""What the ``notifier`` commands share: settings read once, errors as exit status 2, dev secrets.

``main`` registers the commands and every command module imports from here, never from ``main``
or from each other, so the CLI has no import cycle (the ``cli`` contract in pyproject.toml).
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from notifier.core.settings import Settings, SettingsError, load_settings


def fail(message: str) -> NoReturn:
    """Print ``message`` as the command's error and exit 2 (a usage or configuration error)."""
    click.echo(f"notifier: {message}", err=True)
    sys.exit(2)


def get_settings(**overrides: Any) -> Settings:
    """The validated settings; a bad variable names itself and exits 2 instead of a traceback."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def dev_webhook_secret(data_dir: Path) -> str:
    """A webhook secret kept under the data dir so it survives restarts of ``make run``.

    Shared by ``notifier dev``, which gives it to the API, and ``notifier send-test-event``,
    which signs with it, so the two agree without the developer copying a secret around.
    """
    path = data_dir / "webhook-secret"
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret
