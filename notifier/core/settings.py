"""The one settings object, built from ``NOTIFIER_*`` environment variables and validated once.

Every process (API, worker, beat, CLI) reads its configuration through :func:`load_settings`, so a
typo in a variable name or a malformed value stops start-up with a message naming it instead of
silently falling back to a default in production.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from notifier.core.apps import Apps, AppsFileError, load_apps_file, single_app
from notifier.core.patterns import LOCALE_PATTERN

ENV_PREFIX = "NOTIFIER_"

# Variables read by the test suite or the tooling rather than by the service itself; they share the
# prefix, so the unknown-variable check must not reject them.
_NOT_SETTINGS = frozenset(
    {"NOTIFIER_TEST_DATABASE_URL", "NOTIFIER_TEST_REDIS_URL", "NOTIFIER_REQUIRE_SERVICES"}
)

_RATE = re.compile(r"^\s*\d+\s*(/|\s+per\s+)\s*(\d+\s+)?(second|minute|hour|day)s?\s*$")
RATE_LIMIT_SCOPES = (
    "subscriptions",
    "events",
    "lookup",
    "opens",
    "subscription_token",
    "auth_failures",
)
DEFAULT_RATE_LIMITS = {
    # Per address. High because carrier-grade NAT puts thousands of readers behind one IPv4
    # address and they all refresh after a big alert; `subscription_token` is the tight limit.
    "subscriptions": "6000/minute",
    # Per device token (hashed), across subscribe, unsubscribe and token rotation.
    "subscription_token": "20/minute",
    # Per address: wrong API keys before answers turn from 401 to 429.
    "auth_failures": "20/minute",
    "lookup": "60/minute",
    "events": "600/minute",
    "opens": "600/minute",
}


class SettingsError(ValueError):
    """A configuration problem that must stop start-up; its message names the variable."""


def _default_topics_file() -> Path:
    """``config/topics.toml`` of the working directory, else the one beside this checkout."""
    local = Path("config/topics.toml")
    if local.is_file():
        return local
    return Path(__file__).resolve().parents[2] / "config" / "topics.toml"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Validated configuration. Field ``foo_bar`` is read from ``NOTIFIER_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Path("./var")
    database_url: str | None = None
    broker_url: str | None = None
    redis_url: str | None = None
    # Prepended to every Redis key notifier writes (queues, quota bucket, rate limits), so
    # several deployments or test runs can share one Redis server without seeing each other.
    redis_key_prefix: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")

    fcm_credentials: Path | None = None
    fcm_endpoint: str | None = None
    fcm_project_id: str = "notifier-local"
    fcm_quota_per_minute: int = Field(default=600_000, ge=1)
    # Several apps (Firebase projects) in one deployment: see notifier/core/apps.py. Without it,
    # one app ``default`` from the three fcm_* settings above.
    apps_file: Path | None = None

    webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    webhook_max_bytes: int = Field(default=256 * 1024, ge=1024)

    hold_seconds: int = Field(default=0, ge=0, le=86_400)
    default_ttl_seconds: int = Field(default=3600, ge=60, le=2_419_200)
    device_retention_days: int = Field(default=270, ge=1)
    lease_seconds: int = Field(default=180, ge=2, le=600)
    requeue_after_seconds: int = Field(default=60, ge=1, le=3600)
    sweep_interval_seconds: float = Field(default=5.0, ge=0.5, le=300)
    max_send_attempts: int = Field(default=12, ge=1, le=100)
    alert_topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The language of an alert's own text when it names none, and of a device that reports none.
    default_locale: str = Field(default="en", max_length=35, pattern=LOCALE_PATTERN)
    # The daily cap of a reader who never chose one; unset means no cap.
    default_max_per_day: int | None = Field(default=None, ge=1, le=100)

    rate_limits: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    port: int = Field(default=8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    emulator_port: int = Field(default=9099, ge=1, le=65535)
    # The emulator as readers' browsers reach it, for the widget's web push stand-in, when that
    # differs from where the workers send (docker compose: http://emulator:9099 inside).
    emulator_public_url: str | None = None
    topics_file: Path = Field(default_factory=lambda: _default_topics_file())
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    public_url: str | None = None
    vapid_key: str | None = None
    # The Firebase web app readers' browsers register with (Firebase console: project settings,
    # "Your apps", web app). With ``vapid_key`` and ``fcm_project_id`` they turn on web push in the
    # opt-in widget; without them the widget says notifications are not available.
    web_api_key: str | None = None
    web_app_id: str | None = None
    web_messaging_sender_id: str | None = None

    @field_validator("webhook_secrets", "cors_origins", "alert_topics", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("webhook_secrets")
    @classmethod
    def _whsec(cls, secrets: list[str]) -> list[str]:
        for secret in secrets:
            if not secret.startswith("whsec_") or len(secret) < 16:
                raise ValueError("each secret must look like whsec_<base64>")
        return secrets

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rates(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        limits = dict(DEFAULT_RATE_LIMITS)
        for part in filter(None, (p.strip() for p in value.split(";"))):
            scope, sep, rate = part.partition("=")
            scope = scope.strip()
            if not sep or scope not in RATE_LIMIT_SCOPES or not _RATE.match(rate):
                raise ValueError(
                    f"expected scope=N/period pairs separated by ';' with scope in "
                    f"{', '.join(RATE_LIMIT_SCOPES)}, got {part!r}"
                )
            limits[scope] = rate.strip()
        return limits

    @field_validator(
        "database_url",
        "broker_url",
        "redis_url",
        "fcm_endpoint",
        "public_url",
        "emulator_public_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("must be a URL like scheme://...")
        return value

    @field_validator("apps_file")
    @classmethod
    def _apps_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                load_apps_file(value)
            except AppsFileError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _credentials_exist(self) -> Settings:
        if self.fcm_credentials is not None and not self.fcm_credentials.is_file():
            raise ValueError(f"NOTIFIER_FCM_CREDENTIALS: no such file {self.fcm_credentials}")
        return self

    # Derived values: computed from the fields so there is one source of truth.

    @cached_property
    def effective_database_url(self) -> str:
        """The database to use: the configured one, or an SQLite file under the data dir."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'notifier.db').resolve()}"

    @cached_property
    def effective_broker_url(self) -> str:
        """Celery's broker: the configured one, or kombu's durable filesystem transport."""
        return self.broker_url or "filesystem://"

    @property
    def embedded_broker(self) -> bool:
        return self.effective_broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @cached_property
    def apps(self) -> Apps:
        """The apps served: those of ``NOTIFIER_APPS_FILE``, else the one ``default`` app."""
        if self.apps_file is not None:
            return load_apps_file(self.apps_file)  # checked when the settings were validated
        return single_app(
            project_id=self.fcm_project_id,
            credentials=self.fcm_credentials,
            quota_per_minute=self.fcm_quota_per_minute,
        )

    @cached_property
    def effective_fcm_endpoint(self) -> str | None:
        """Where firebase-admin sends: the emulator unless real credentials are configured."""
        if self.fcm_endpoint:
            return self.fcm_endpoint.rstrip("/")
        if self.fcm_credentials is None and self.apps_file is None:
            return f"http://127.0.0.1:{self.emulator_port}"
        return None


def normalise_database_url(url: str) -> str:
    """Map the plain ``postgresql://`` scheme to the psycopg 3 driver SQLAlchemy should use."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _unknown_variables(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(
        key
        for key in environ
        if key.startswith(ENV_PREFIX) and key not in known and key not in _NOT_SETTINGS
    )


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings from the environment (or ``environ``), raising :class:`SettingsError`.

    ``overrides`` take precedence over the environment; tests and the ``dev`` command use them.
    """
    env = dict(os.environ if environ is None else environ)
    unknown = _unknown_variables(env)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update(overrides)
    try:
        # Validating the collected values (instead of letting pydantic-settings read os.environ
        # itself) keeps ``environ`` authoritative, which makes tests and subprocesses predictable.
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        name = ENV_PREFIX + where.upper() if where != "settings" else where
        lines.append(f"{name}: {error['msg']}")
    return "invalid configuration: " + "; ".join(lines)
