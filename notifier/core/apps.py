"""The apps one deployment serves: each its own Firebase project, credentials and quota.

A newsroom rarely has one app (an English and a French edition, each on Android and iOS, plus the
website), and each Firebase project has its own service account and its own 600,000-a-minute
quota. ``NOTIFIER_APPS_FILE`` names a TOML file with one ``[[app]]`` table per app::

    [[app]]
    id = "en"                       # a slug; devices and alerts name their app by it
    project_id = "news-en"
    credentials = "secrets/en.json" # relative paths are read from the file's own folder
    quota_per_minute = 600000       # optional; FCM's default quota

Without the file there is one app, ``default``, built from ``NOTIFIER_FCM_CREDENTIALS`` and
``NOTIFIER_FCM_PROJECT_ID`` as before, so an existing deployment changes nothing. The app whose id
is ``default`` (else the first listed) takes the devices and requests that name no app, including
every device that existed before apps did (migration 0004 puts them in ``default``).

A file that cannot be trusted (unknown keys, duplicate ids, bad slugs, a missing credentials
file) stops start-up with a message naming the problem, like every other setting.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_APP: Final = "default"
DEFAULT_QUOTA_PER_MINUTE: Final = 600_000
# Stored in ``devices.app`` and ``batches.app`` (String(64)) and used in Redis keys and metric
# labels, hence no characters beyond these.
APP_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
_APP_ID = re.compile(APP_ID_PATTERN)
_KEYS = frozenset({"id", "project_id", "credentials", "quota_per_minute"})
_REQUIRED = ("id", "project_id", "credentials")


class AppsFileError(ValueError):
    """The apps file cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class App:
    """One Firebase project the deployment sends through.

    ``credentials`` is None only for the implicit ``default`` app without
    ``NOTIFIER_FCM_CREDENTIALS`` (the local emulator, which gets a generated service account).
    """

    id: str
    project_id: str
    credentials: Path | None
    quota_per_minute: int = DEFAULT_QUOTA_PER_MINUTE


@dataclass(frozen=True, slots=True)
class Apps:
    """The configured apps in file order, and which one is the default."""

    all: tuple[App, ...]
    default: App

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(app.id for app in self.all)

    def get(self, app_id: str) -> App | None:
        return next((app for app in self.all if app.id == app_id), None)

    def sending(self, app_id: str) -> App | None:
        """The app that sends to devices stored under ``app_id``: that app, or, for ``default``
        when no app has that id, the default app (devices from before the apps file, and test
        devices, are stored under ``default``)."""
        app = self.get(app_id)
        if app is None and app_id == DEFAULT_APP:
            return self.default
        return app

    def unknown(self, app_ids: list[str] | tuple[str, ...]) -> list[str]:
        """Those of ``app_ids`` this deployment does not serve, sorted (for a 422)."""
        known = set(self.ids)
        return sorted({a for a in app_ids if a not in known})


def single_app(*, project_id: str, credentials: Path | None, quota_per_minute: int) -> Apps:
    """The one ``default`` app of a deployment without an apps file."""
    app = App(DEFAULT_APP, project_id, credentials, quota_per_minute)
    return Apps((app,), app)


def load_apps_file(path: Path) -> Apps:
    """Read and check the apps file at ``path``; :class:`AppsFileError` says what is wrong."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AppsFileError(f"no such file {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AppsFileError(f"{path} is not a readable TOML file: {exc}") from None
    extra = sorted(set(document) - {"app"})
    if extra:
        raise AppsFileError(f"{path}: unknown top-level key(s) {', '.join(extra)}")
    tables = document.get("app")
    if not isinstance(tables, list) or not tables:
        raise AppsFileError(f"{path}: expected at least one [[app]] table")
    apps: list[App] = []
    for number, table in enumerate(tables, start=1):
        app = _app(table, where=f"{path}: [[app]] #{number}", folder=path.parent)
        if any(seen.id == app.id for seen in apps):
            raise AppsFileError(f"{path}: duplicate app id {app.id!r}")
        apps.append(app)
    default = next((a for a in apps if a.id == DEFAULT_APP), apps[0])
    return Apps(tuple(apps), default)


def _app(table: object, *, where: str, folder: Path) -> App:
    if not isinstance(table, dict):
        raise AppsFileError(f"{where}: expected a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise AppsFileError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise AppsFileError(f"{where}: missing {', '.join(missing)}")
    app_id, project_id, credentials = table["id"], table["project_id"], table["credentials"]
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise AppsFileError(
            f"{where}: id {app_id!r} is not a slug (lowercase letters, digits, hyphens; "
            "at most 64 characters)"
        )
    where = f"{where} ({app_id})"
    if not isinstance(project_id, str) or not project_id.strip():
        raise AppsFileError(f"{where}: project_id must be a non-empty string")
    if not isinstance(credentials, str) or not credentials.strip():
        raise AppsFileError(f"{where}: credentials must be a file path")
    credentials_path = Path(credentials).expanduser()
    if not credentials_path.is_absolute():
        credentials_path = folder / credentials_path
    if not credentials_path.is_file():
        raise AppsFileError(f"{where}: no such credentials file {credentials_path}")
    quota = table.get("quota_per_minute", DEFAULT_QUOTA_PER_MINUTE)
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
        raise AppsFileError(f"{where}: quota_per_minute must be a whole number of at least 1")
    return App(app_id, project_id, credentials_path, quota)
