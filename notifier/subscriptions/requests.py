"""Request shapes of the reader API; unknown fields are rejected (no mass assignment)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from notifier.core.patterns import LOCALE_MAX_LENGTH, LOCALE_PATTERN, TOPIC_SLUG_PATTERN
from notifier.core.vocabulary import Platform

MAX_TOPICS_PER_REQUEST = 100

# FCM registration tokens are URL-safe base64 with ':' separators, ~150-250 characters.
Token = Annotated[
    str,
    StringConstraints(strict=True, min_length=8, max_length=1024, pattern=r"^[A-Za-z0-9_:.\-]+$"),
]
Slug = Annotated[str, StringConstraints(strict=True, pattern=TOPIC_SLUG_PATTERN)]
Locale = Annotated[
    str,
    StringConstraints(strict=True, max_length=LOCALE_MAX_LENGTH, pattern=LOCALE_PATTERN),
]
# Strict models take only enum members from a parsed body; the JSON string is its value.
PlatformName = Annotated[Platform, Field(strict=False)]


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


class SubscribeRequest(Strict):
    token: Token
    platform: PlatformName
    topics: Topics
    locale: Locale | None = None
    timezone: Zone | None = None


class UnsubscribeRequest(Strict):
    token: Token
    topics: Topics | None = None


class LookupRequest(Strict):
    token: Token


class RotateTokenRequest(Strict):
    old_token: Token
    new_token: Token
