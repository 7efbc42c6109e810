"""The preference rules as plain functions: quiet hours by the reader's wall clock, the cap,
urgent alerts, and the best text for a locale. No database: times are given, not waited for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier.core.vocabulary import QuietMode, SuppressReason, Urgency
from notifier.pipeline.preferences import (
    DevicePrefs,
    Fate,
    best_text,
    decide,
    in_quiet_hours,
    in_window,
    language,
    local_minutes,
    parse_clock,
)


def prefs(
    *,
    zone: str | None = "Asia/Jerusalem",
    quiet: tuple[str, str] | None = None,
    mode: QuietMode = QuietMode.SILENT,
    cap: int | None = None,
    urgent_overrides: bool = True,
    locale: str | None = None,
) -> DevicePrefs:
    return DevicePrefs(
        device_id=1,
        locale=locale,
        timezone=zone,
        quiet_start=parse_clock(quiet[0]) if quiet else None,
        quiet_end=parse_clock(quiet[1]) if quiet else None,
        quiet_mode=mode if quiet else None,
        max_per_day=cap,
        urgent_overrides=urgent_overrides,
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("minute", "inside"),
    [("21:59", False), ("22:00", True), ("23:59", True), ("00:00", True), ("06:59", True),
     ("07:00", False), ("12:00", False)],
)  # fmt: skip
def test_a_window_crossing_midnight_covers_both_sides_of_it(minute: str, inside: bool) -> None:
    assert in_window(parse_clock(minute), parse_clock("22:00"), parse_clock("07:00")) is inside


def test_a_window_within_a_day_and_an_empty_window() -> None:
    assert in_window(parse_clock("13:30"), parse_clock("13:00"), parse_clock("14:00"))
    assert not in_window(parse_clock("14:00"), parse_clock("13:00"), parse_clock("14:00"))
    assert not in_window(parse_clock("22:00"), parse_clock("22:00"), parse_clock("22:00"))


@pytest.mark.parametrize("bad", ["7:00", "24:00", "12:60", "1200", "ab:cd", "12:00:00", ""])
def test_malformed_clock_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_clock(bad)


def test_half_hour_and_45_minute_zones_use_the_readers_wall_clock() -> None:
    # 16:45 UTC is 22:15 in Kolkata (+05:30) and 22:30 in Kathmandu (+05:45).
    now = utc("2026-03-10T16:45:00")
    assert local_minutes(now, "Asia/Kolkata") == parse_clock("22:15")
    assert local_minutes(now, "Asia/Kathmandu") == parse_clock("22:30")
    window = ("22:20", "23:00")
    assert not in_quiet_hours(prefs(zone="Asia/Kolkata", quiet=window), now)
    assert in_quiet_hours(prefs(zone="Asia/Kathmandu", quiet=window), now)


def test_quiet_hours_follow_the_clock_change_on_a_dst_day() -> None:
    # New York springs forward on 2026-03-08 at 02:00 local (07:00 UTC): EST -5 becomes EDT -4.
    reader = prefs(zone="America/New_York", quiet=("22:00", "07:00"))
    # 10:30 UTC: 06:30 EDT on the change day (05:30 if the offset were not applied): quiet.
    assert in_quiet_hours(reader, utc("2026-03-08T10:30:00"))
    # 11:30 UTC: 07:30 EDT, past the window; by the winter offset it would be 06:30, quiet.
    assert not in_quiet_hours(reader, utc("2026-03-08T11:30:00"))
    # The day before, 11:30 UTC is 06:30 EST: still quiet.
    assert in_quiet_hours(reader, utc("2026-03-07T11:30:00"))


def test_quiet_hours_need_a_zone_and_a_window() -> None:
    now = utc("2026-03-10T23:00:00")
    assert not in_quiet_hours(prefs(zone=None, quiet=("00:00", "23:59")), now)
    assert not in_quiet_hours(prefs(zone="UTC"), now)


NIGHT = utc("2026-03-10T23:30:00")  # 01:30 in Jerusalem (+02:00)
DAY = utc("2026-03-10T10:00:00")


def test_silent_mode_delivers_quietly_and_skip_mode_suppresses() -> None:
    silent = prefs(quiet=("22:00", "07:00"), mode=QuietMode.SILENT)
    skip = prefs(quiet=("22:00", "07:00"), mode=QuietMode.SKIP)
    kwargs = {"sends_in_window": 0, "default_cap": None}
    assert decide(silent, Urgency.NORMAL, NIGHT, **kwargs).fate == Fate.SILENT
    assert decide(skip, Urgency.NORMAL, NIGHT, **kwargs).fate == Fate.SUPPRESS
    assert decide(skip, Urgency.NORMAL, NIGHT, **kwargs).reason == SuppressReason.QUIET_HOURS
    assert decide(skip, Urgency.NORMAL, DAY, **kwargs).fate == Fate.SEND


def test_the_cap_suppresses_once_reached_and_counts_what_it_lets_through() -> None:
    capped = prefs(cap=2)
    under = decide(capped, Urgency.NORMAL, DAY, sends_in_window=1, default_cap=None)
    at = decide(capped, Urgency.NORMAL, DAY, sends_in_window=2, default_cap=None)
    assert (under.fate, under.counts_against_cap) == (Fate.SEND, True)
    assert (at.fate, at.reason) == (Fate.SUPPRESS, SuppressReason.DAILY_CAP)


def test_the_default_cap_applies_only_when_the_reader_chose_none() -> None:
    assert decide(prefs(), Urgency.NORMAL, DAY, sends_in_window=3, default_cap=3).fate == (
        Fate.SUPPRESS
    )
    assert decide(prefs(cap=5), Urgency.NORMAL, DAY, sends_in_window=3, default_cap=3).fate == (
        Fate.SEND
    )
    uncapped = decide(prefs(), Urgency.NORMAL, DAY, sends_in_window=99, default_cap=None)
    assert (uncapped.fate, uncapped.counts_against_cap) == (Fate.SEND, False)


def test_urgent_alerts_pass_quiet_hours_audibly_and_the_cap_without_counting() -> None:
    reader = prefs(quiet=("22:00", "07:00"), mode=QuietMode.SKIP, cap=1)
    decision = decide(reader, Urgency.URGENT, NIGHT, sends_in_window=5, default_cap=None)
    assert decision == decide(reader, Urgency.URGENT, DAY, sends_in_window=5, default_cap=None)
    assert (decision.fate, decision.counts_against_cap) == (Fate.SEND, False)


def test_a_reader_who_refuses_urgent_overrides_gets_urgent_alerts_as_normal_ones() -> None:
    reader = prefs(quiet=("22:00", "07:00"), mode=QuietMode.SILENT, cap=1, urgent_overrides=False)
    assert decide(reader, Urgency.URGENT, NIGHT, sends_in_window=0, default_cap=None).fate == (
        Fate.SILENT
    )
    capped = decide(reader, Urgency.URGENT, DAY, sends_in_window=1, default_cap=None)
    assert (capped.fate, capped.reason) == (Fate.SUPPRESS, SuppressReason.DAILY_CAP)


def test_a_skipped_alert_does_not_take_a_place_under_the_cap() -> None:
    reader = prefs(quiet=("22:00", "07:00"), mode=QuietMode.SKIP, cap=1)
    decision = decide(reader, Urgency.NORMAL, NIGHT, sends_in_window=0, default_cap=None)
    assert (decision.reason, decision.counts_against_cap) == (SuppressReason.QUIET_HOURS, False)


TRANSLATIONS = {
    "fr": {"headline": "Séisme dans le nord"},
    "fr-CA": {"headline": "Tremblement de terre", "body": "Détails", "url": "https://ca.example/"},
    "he": {"headline": "רעידת אדמה", "url": "https://he.example/"},
}


def text_for(locale: str | None, translations: dict[str, dict[str, str]] = TRANSLATIONS) -> str:
    return best_text(
        locale,
        alert_locale="en",
        headline="Quake in the north",
        body="Details",
        url="https://news.example/",
        translations=translations,
        default_locale="en",
    ).headline


@pytest.mark.parametrize(
    ("locale", "headline"),
    [("fr-CA", "Tremblement de terre"), ("fr_ca", "Tremblement de terre"),
     ("fr-BE", "Séisme dans le nord"), ("fr", "Séisme dans le nord"), ("he-IL", "רעידת אדמה"),
     ("de", "Quake in the north"), (None, "Quake in the north"), ("en-GB", "Quake in the north")],
)  # fmt: skip
def test_each_device_gets_its_tag_then_its_language_then_the_alerts_text(
    locale: str | None, headline: str
) -> None:
    assert text_for(locale) == headline


def test_a_translation_without_a_url_or_body_keeps_the_link_and_drops_the_body() -> None:
    text = best_text(
        "fr",
        alert_locale="en",
        headline="Quake",
        body="English details",
        url="https://news.example/",
        translations=TRANSLATIONS,
        default_locale="en",
    )
    assert (text.locale, text.body, text.url) == ("fr", None, "https://news.example/")


def test_languages_are_primary_subtags_and_a_missing_locale_is_the_default() -> None:
    assert [language(tag, "en") for tag in ("fr-CA", "FR_ca", "he", None)] == [
        "fr",
        "fr",
        "he",
        "en",
    ]
    assert language(None, "fr") == "fr"
