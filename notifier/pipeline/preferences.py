"""What a reader's preferences decide for one device and one alert: plain functions, no database.

The send path calls :func:`decide` for every pending device of a batch, at the moment the batch
is sent (not when it is planned): quiet hours are about when the phone buzzes, and a batch can
wait minutes for a retry or the quota after planning; the daily cap likewise counts what reached
the device, so it is judged next to the send, under a lock (see ``notifier.pipeline.send``).
The text's language is decided here too, because the device's locale is read in the same row.

Times: quiet hours are minutes after local midnight in the device's IANA zone. "Now" is
converted with :mod:`zoneinfo`, so a half-hour or 45-minute offset and a DST change day need no
special case: the wall clock the reader sees is what is compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifier.core.vocabulary import QuietMode, SuppressReason, Urgency

CAP_WINDOW = timedelta(hours=24)
MINUTES_PER_DAY = 24 * 60


def language(locale: str | None, default_locale: str) -> str:
    """The primary language subtag, lowercased: ``fr-CA`` and ``fr_ca`` are ``fr``."""
    tag = (locale or default_locale).replace("_", "-").lower()
    return tag.split("-", 1)[0]


def parse_clock(value: str) -> int:
    """``"HH:MM"`` (24-hour) to minutes after midnight; ValueError when malformed."""
    hours, sep, minutes = value.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("must be HH:MM, e.g. 22:00")
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError("must be a time of day from 00:00 to 23:59")
    return h * 60 + m


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_minutes(now: datetime, timezone: str) -> int | None:
    """Minutes after local midnight at ``now`` (aware) in ``timezone``; None for an unknown zone."""
    zone = _zone(timezone)
    if zone is None:
        return None
    local = now.astimezone(zone)
    return local.hour * 60 + local.minute


def in_window(minute: int, start: int, end: int) -> bool:
    """Whether ``minute`` falls in ``[start, end)``; a window with ``start > end`` crosses midnight.

    ``start == end`` is an empty window (a reader who set 22:00-22:00 asked for nothing).
    """
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


@dataclass(frozen=True, slots=True)
class DevicePrefs:
    """A device's row as the send path reads it."""

    device_id: int
    locale: str | None
    timezone: str | None
    quiet_start: int | None
    quiet_end: int | None
    quiet_mode: QuietMode | None
    max_per_day: int | None
    urgent_overrides: bool


class Fate(StrEnum):
    SEND = "send"
    SILENT = "silent"  # sent without sound (quiet hours, mode ``silent``)
    SUPPRESS = "suppress"


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one device: sent (maybe silently, maybe counted against its cap) or not."""

    fate: Fate
    reason: SuppressReason | None = None
    counts_against_cap: bool = False


def in_quiet_hours(prefs: DevicePrefs, now: datetime) -> bool:
    if prefs.quiet_start is None or prefs.quiet_end is None or not prefs.timezone:
        return False
    minute = local_minutes(now, prefs.timezone)
    return minute is not None and in_window(minute, prefs.quiet_start, prefs.quiet_end)


def effective_cap(prefs: DevicePrefs, default_cap: int | None) -> int | None:
    return prefs.max_per_day if prefs.max_per_day is not None else default_cap


def decide(
    prefs: DevicePrefs,
    urgency: Urgency,
    now: datetime,
    *,
    sends_in_window: int,
    default_cap: int | None,
) -> Decision:
    """The fate of one device for one alert.

    ``sends_in_window`` is how many other normal alerts reached the device in the last 24 hours.
    An urgent alert ignores quiet hours (audibly) and the cap, and does not count against it,
    unless the reader set ``urgent_overrides`` to false, in which case it is treated as normal.
    Quiet hours are judged first: a skipped alert never takes a place under the cap.
    """
    privileged = urgency == Urgency.URGENT and prefs.urgent_overrides
    if privileged:
        return Decision(Fate.SEND)
    quiet = in_quiet_hours(prefs, now)
    if quiet and (prefs.quiet_mode or QuietMode.SILENT) == QuietMode.SKIP:
        return Decision(Fate.SUPPRESS, SuppressReason.QUIET_HOURS)
    cap = effective_cap(prefs, default_cap)
    if cap is not None and sends_in_window >= cap:
        return Decision(Fate.SUPPRESS, SuppressReason.DAILY_CAP)
    return Decision(Fate.SILENT if quiet else Fate.SEND, counts_against_cap=cap is not None)


def is_capped(prefs: DevicePrefs, urgency: Urgency, default_cap: int | None) -> bool:
    """Whether the device's decision needs its send count (and so a lock on its row)."""
    if urgency == Urgency.URGENT and prefs.urgent_overrides:
        return False
    return effective_cap(prefs, default_cap) is not None


@dataclass(frozen=True, slots=True)
class Text:
    """The words one device gets: the alert's own, or a translation's (missing parts inherited)."""

    locale: str
    headline: str
    body: str | None
    url: str


def best_text(
    device_locale: str | None,
    *,
    alert_locale: str,
    headline: str,
    body: str | None,
    url: str,
    translations: Mapping[str, Mapping[str, str]],
    default_locale: str,
) -> Text:
    """The best match for the device: its exact tag (``fr-CA``), its language (``fr``), else the
    alert's own text. A translation without ``body`` has none (a body in another language would
    be worse); one without ``url`` links to the alert's URL."""
    own = Text(alert_locale, headline, body, url)
    if not translations:
        return own
    wanted = (device_locale or default_locale).replace("_", "-").lower()
    by_tag = {tag.replace("_", "-").lower(): tag for tag in translations}
    candidates: Sequence[str] = (wanted, wanted.split("-", 1)[0])
    if language(alert_locale, default_locale) == candidates[1] and wanted not in by_tag:
        return own  # the alert is already in the reader's language
    for candidate in candidates:
        tag = by_tag.get(candidate)
        if tag is not None:
            text = translations[tag]
            return Text(tag, text["headline"], text.get("body"), text.get("url") or url)
    return own
