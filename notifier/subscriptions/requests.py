"""Request shapes of the reader API; unknown fields are rejected (no mass assignment)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from notifier.core.apps import APP_ID_PATTERN
from notifier.core.patterns import LOCALE_MAX_LENGTH, LOCALE_PATTERN, TOPIC_SLUG_PATTERN
from notifier.core.vocabulary import Platform

MAX_TOPICS_PER_REQUEST = 100

# FCM registration tokens are URL-safe base64 with ':' separators, ~150-250 characters.
Token = Annotated[
    str,
    StringConstraints(strict=True, min_length=8, max_length=1024, pattern=r"^[A-Za-z0-9_:.\-]+$"),
]
Slug = Annotated[str, StringConstraints(strict=True, pattern=TOPIC_SLUG_PATTERN)]
# An app's id (notifier/core/apps.py); whether the deployment serves it is the view's check.
AppId = Annotated[str, StringConstraints(strict=True, pattern=APP_ID_PATTERN)]
Locale = Annotated[
    str,
    StringConstraints(strict=True, max_length=LOCALE_MAX_LENGTH, pattern=LOCALE_PATTERN),
]
# Strict models take only enum members from a parsed body; the JSON string is its value.
PlatformName = Annotated[Platform, Field(strict=False)]


# Whitespace exactly as ECMA-262 ``\s`` (the dialect of the description's patterns) has it,
# spelled out: Python's ``str.strip()`` also strips \x1c-\x1f and \x85 and pydantic's Rust regex
# another set, so "blank" would otherwise mean three different things.
WHITESPACE = (
    "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# Text that is stored: PostgreSQL text cannot hold NUL, so it is refused as input (a 422)
# instead of failing the insert (a 500). Unpaired surrogates are refused by pydantic itself.
NO_NUL = r"^[^\x00]*$"


def not_blank(value: str) -> str:
    """Strip surrounding whitespace; refuse what is left empty (use with ``AfterValidator``)."""
    stripped = value.strip(WHITESPACE)
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


def stored_text(max_length: int) -> StringConstraints:
    """A free-text field of at most ``max_length`` characters (counted as sent), without NUL."""
    return StringConstraints(strict=True, max_length=max_length, pattern=NO_NUL)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA time zone name, e.g. Asia/Jerusalem")
    return value


Zone = Annotated[str, StringConstraints(strict=True, max_length=64), AfterValidator(_known_zone)]
Topics = Annotated[list[Slug], Field(min_length=1, max_length=MAX_TOPICS_PER_REQUEST)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Clock = Annotated[str, StringConstraints(strict=True, pattern=CLOCK_PATTERN)]
MaxPerDay = Annotated[int, Field(ge=1, le=100)]


class QuietHours(Strict):
    """A daily window in the device's own time zone; ``start`` after ``end`` crosses midnight."""

    start: Clock
    end: Clock
    mode: Literal["silent", "skip"] = "silent"


# The reader's preferences: for each, an omitted field keeps its stored value and ``null``
# clears it (quiet hours off, the default cap, urgent alerts overriding again).
PREFERENCE_FIELDS = ("locale", "timezone", "quiet_hours", "max_per_day", "urgent_overrides")


class SubscribeRequest(Strict):
    token: Token
    # The app that issued the token; the deployment's default app when omitted.
    app: AppId | None = None
    platform: PlatformName
    topics: Topics
    locale: Locale | None = None
    timezone: Zone | None = None
    quiet_hours: QuietHours | None = None
    max_per_day: MaxPerDay | None = None
    urgent_overrides: bool | None = None

    @model_validator(mode="after")
    def _quiet_hours_need_a_zone(self) -> SubscribeRequest:
        # Only a request that both sets quiet hours and clears the zone is refused here; one
        # that relies on the stored zone is checked against the device by the service.
        cleared_zone = "timezone" in self.model_fields_set and self.timezone is None
        if self.quiet_hours is not None and cleared_zone:
            raise ValueError("quiet_hours need the device's timezone")
        return self

    def preference_changes(self) -> dict[str, object]:
        """The preferences this request sets or clears (omitted ones are left out)."""
        named = self.model_fields_set
        return {name: getattr(self, name) for name in PREFERENCE_FIELDS if name in named}


class UnsubscribeRequest(Strict):
    token: Token
    app: AppId | None = None
    topics: Topics | None = None


class LookupRequest(Strict):
    token: Token
    app: AppId | None = None


class RotateTokenRequest(Strict):
    old_token: Token
    new_token: Token
    app: AppId | None = None
