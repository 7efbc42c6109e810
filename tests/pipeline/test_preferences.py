"""Readers' preferences end to end: PostgreSQL, Redis, real workers and the FCM emulator over HTTP.

Workers judge quiet hours by the real clock, so windows are built around the current time in
the device's zone (a fixed-offset ``Etc/GMT`` zone where a test needs a given local hour). The
DST-change day cannot be waited for: that test runs the real send path and the real FCM sender
on PostgreSQL against the emulator with a clock set on the day.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.db import transaction
from notifier.emulator.service_account import ensure_service_account
from notifier.fcm.sender import FcmSender
from notifier.pipeline import record
from notifier.pipeline.planner import plan_slice
from notifier.pipeline.quota import LocalTokenBucket
from notifier.pipeline.send import send_batch
from tests.pipeline.conftest import Stack
from tests.send_path.fake_sender import FakeSender


def counts_add_up(view: dict[str, Any]) -> None:
    c = view["counts"]
    settled = c["sent"] + c["failed"] + c["pruned"] + c["cancelled"] + c["suppressed"]
    assert c["audience"] == settled + c["pending"], c
    assert c["suppressed"] == sum(c["suppressed_by_reason"].values()), c
    assert 0 <= c["silent"] <= c["sent"], c


def join(stack: Stack, token: str, **preferences: Any) -> None:
    body = {"token": token, "platform": "android", "topics": ["israel"], **preferences}
    response = stack.client.post("/v1/subscriptions", json=body)
    assert response.status_code in (200, 201), response.json


def clock(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def local_minute(zone: str, now: datetime | None = None) -> int:
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))
    return local.hour * 60 + local.minute


def window_around_now(zone: str, *, before: int = 10, after: int = 20) -> dict[str, str]:
    minute = local_minute(zone)
    return {"start": clock(minute - before), "end": clock(minute + after)}


def zone_at_local_hour(hour: int) -> str:
    """A fixed-offset IANA zone in which it is now ``hour`` o'clock."""
    offset = (hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs are inverted


def messages_by_token(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in stack.emulator.messages():
        found.setdefault(item["token"], []).append(item["message"])
    return found


def deliveries(stack: Stack, alert_id: str) -> dict[str, tuple[str, str | None]]:
    from sqlalchemy import select

    from notifier.core.models import Delivery, Device

    with stack.runtime.sessions() as session:
        rows = session.execute(
            select(Device.token, Delivery.status, Delivery.error_code)
            .join(Device, Device.id == Delivery.device_id)
            .where(Delivery.alert_id == alert_id)
        ).all()
    return {token: (status, code) for token, status, code in rows}


def test_a_window_crossing_midnight_sends_silently_or_skips_by_mode(stack: Stack) -> None:
    midnight = zone_at_local_hour(0)  # it is 00:xx there: inside 22:00-02:00
    noon = zone_at_local_hour(12)
    window = {"start": "22:00", "end": "02:00"}
    join(stack, "quiet-silent-0001", timezone=midnight, quiet_hours={**window, "mode": "silent"})
    join(stack, "quiet-skip-0001", timezone=midnight, quiet_hours={**window, "mode": "skip"})
    join(stack, "awake-0001", timezone=noon, quiet_hours={**window, "mode": "skip"})
    stack.start_worker()

    view = stack.wait_for_status(stack.post_alert()["id"])

    received = messages_by_token(stack)
    assert set(received) == {"quiet-silent-0001", "awake-0001"}
    [quiet] = received["quiet-silent-0001"]
    [awake] = received["awake-0001"]
    assert quiet["android"]["notification"]["channel_id"] == "quiet"
    assert quiet["android"]["notification"]["notification_priority"] == "PRIORITY_LOW"
    assert quiet["android"]["priority"] == "normal"
    assert awake["android"]["notification"]["channel_id"] == "breaking"
    assert awake["android"]["priority"] == "high"
    counts = view["counts"]
    assert (counts["sent"], counts["silent"], counts["suppressed"]) == (2, 1, 1)
    assert counts["suppressed_by_reason"] == {"quiet_hours": 1, "daily_cap": 0}
    assert deliveries(stack, view["id"])["quiet-skip-0001"] == ("suppressed", "quiet_hours")
    counts_add_up(view)


def test_half_hour_and_45_minute_zones_are_judged_by_their_own_clocks(stack: Stack) -> None:
    # Kathmandu is 15 minutes ahead of Kolkata: a window starting 5 minutes before Kathmandu's
    # time and ending 10 after holds Kathmandu's "now" and not Kolkata's.
    kathmandu = window_around_now("Asia/Kathmandu", before=5, after=10)
    kolkata = window_around_now("Asia/Kolkata", before=5, after=10)
    join(stack, "ktm-in-0001", timezone="Asia/Kathmandu", quiet_hours={**kathmandu, "mode": "skip"})
    join(stack, "ccu-out-0001", timezone="Asia/Kolkata", quiet_hours={**kathmandu, "mode": "skip"})
    join(stack, "ccu-in-0001", timezone="Asia/Kolkata", quiet_hours={**kolkata, "mode": "skip"})
    stack.start_worker()

    view = stack.wait_for_status(stack.post_alert()["id"])

    assert set(messages_by_token(stack)) == {"ccu-out-0001"}
    outcomes = deliveries(stack, view["id"])
    assert outcomes["ktm-in-0001"] == outcomes["ccu-in-0001"] == ("suppressed", "quiet_hours")
    counts_add_up(view)


def test_quiet_hours_follow_the_zones_clock_change_on_a_dst_day(stack: Stack) -> None:
    """New York springs forward on 2026-03-08 at 02:00 (07:00 UTC); quiet hours end at 07:00.

    At 11:30 UTC it is 07:30 EDT, past the window; by the winter offset it would be 06:30 and
    still quiet. At 10:30 UTC it is 06:30 EDT: quiet.
    """
    join(
        stack,
        "nyc-0001",
        timezone="America/New_York",
        quiet_hours={"start": "22:00", "end": "07:00", "mode": "skip"},
    )
    sender = FcmSender.from_settings(stack.settings, emulator_account=ensure_service_account)
    try:
        outcome = {}
        for at in (
            datetime(2026, 3, 8, 10, 30, tzinfo=UTC),
            datetime(2026, 3, 8, 11, 30, tzinfo=UTC),
        ):
            with transaction(stack.runtime.sessions) as session:
                alert_id = create_alert(
                    session,
                    AlertDraft(headline="DST", url="https://news.example/d", topics=("israel",)),
                    default_hold=0,
                    default_ttl=3600,
                ).id
            [batch_id] = plan_slice(stack.runtime.sessions, alert_id).batch_ids
            send_batch(
                stack.runtime.sessions,
                batch_id,
                sender=sender,
                limiter=LocalTokenBucket(600_000),
                lease_seconds=30,
                max_attempts=3,
                clock=lambda at=at: at,  # type: ignore[misc]
            )
            outcome[at.hour] = deliveries(stack, alert_id)["nyc-0001"]
            counts_add_up(stack.alert(alert_id))
    finally:
        sender.close()
    assert outcome == {10: ("suppressed", "quiet_hours"), 11: ("sent", None)}
    assert len(stack.emulator.messages()) == 1


def test_urgent_alerts_pass_quiet_hours_audibly_and_the_cap_unless_the_reader_refused(
    stack: Stack,
) -> None:
    zone = "Asia/Jerusalem"
    quiet = {**window_around_now(zone), "mode": "skip"}
    join(stack, "quiet-0001", timezone=zone, quiet_hours=quiet)
    join(stack, "quiet-strict-0001", timezone=zone, quiet_hours=quiet, urgent_overrides=False)
    join(stack, "capped-0001", max_per_day=1)
    join(stack, "capped-strict-0001", max_per_day=1, urgent_overrides=False)
    stack.start_worker()

    normal = stack.wait_for_status(stack.post_alert(headline="Normal")["id"])
    stack.emulator.reset()
    urgent = stack.wait_for_status(stack.post_alert(headline="Urgent", urgency="urgent")["id"])

    assert deliveries(stack, normal["id"]) == {
        "quiet-0001": ("suppressed", "quiet_hours"),
        "quiet-strict-0001": ("suppressed", "quiet_hours"),
        "capped-0001": ("sent", None),
        "capped-strict-0001": ("sent", None),
    }
    assert deliveries(stack, urgent["id"]) == {
        "quiet-0001": ("sent", None),
        "quiet-strict-0001": ("suppressed", "quiet_hours"),
        "capped-0001": ("sent", None),  # past its cap of 1
        "capped-strict-0001": ("suppressed", "daily_cap"),
    }
    received = messages_by_token(stack)
    assert received["quiet-0001"][0]["android"]["notification"]["channel_id"] == "breaking"
    assert urgent["urgency"] == "urgent"
    for view in (normal, urgent):
        counts_add_up(view)


def test_a_cap_of_one_with_two_alerts_fanning_out_at_once_on_two_workers(stack: Stack) -> None:
    tokens = [f"cap-{i:04d}-APA91b" for i in range(1000)]
    for token in tokens:
        join(stack, token, max_per_day=1)
    stack.start_worker()
    stack.start_worker()
    created: list[str] = []
    start = threading.Barrier(2)

    def post(headline: str) -> None:
        start.wait()
        created.append(stack.post_alert(headline=headline)["id"])

    threads = [threading.Thread(target=post, args=(h,)) for h in ("First", "Second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    views = [stack.wait_for_status(alert_id) for alert_id in created]

    received = Counter(stack.emulator.tokens())
    assert set(received) == set(tokens)
    assert set(received.values()) == {1}  # exactly one of the two alerts reached each device
    assert sum(v["counts"]["sent"] for v in views) == 1000
    assert sum(v["counts"]["suppressed_by_reason"]["daily_cap"] for v in views) == 1000
    for view in views:
        counts_add_up(view)


def test_the_database_makes_the_second_of_two_concurrent_decisions_wait_for_the_first(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap's arbiter, made deterministic: the first alert's decision is held open (after it
    counted the device's sends) while the second alert's decision runs on PostgreSQL. The second
    must wait for the first's commit and then see its send, not count the same free place."""
    join(stack, "capped-race-0001", max_per_day=1)
    first, second = (_planned_alert(stack, headline) for headline in ("First", "Second"))
    counted = threading.Event()
    release = threading.Event()
    real_decide = record.decide

    def held_decide(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "first":
            counted.set()
            release.wait(10)
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(record, "decide", held_decide)

    def send(batch_id: int) -> None:
        send_batch(
            stack.runtime.sessions,
            batch_id,
            sender=FakeSender(),
            limiter=LocalTokenBucket(600_000),
            lease_seconds=30,
            max_attempts=3,
        )

    one = threading.Thread(target=send, args=(first[1],), name="first")
    two = threading.Thread(target=send, args=(second[1],), name="second")
    one.start()
    assert counted.wait(10)
    two.start()
    two.join(1.0)
    assert two.is_alive()  # waiting on the device's row, not deciding on a stale count
    release.set()
    one.join(10)
    two.join(10)

    outcomes = [deliveries(stack, alert_id)["capped-race-0001"] for alert_id, _ in (first, second)]
    assert outcomes == [("sent", None), ("suppressed", "daily_cap")]


def _planned_alert(stack: Stack, headline: str) -> tuple[str, int]:
    with transaction(stack.runtime.sessions) as session:
        alert_id = create_alert(
            session,
            AlertDraft(headline=headline, url="https://news.example/r", topics=("israel",)),
            default_hold=0,
            default_ttl=3600,
        ).id
    [batch_id] = plan_slice(stack.runtime.sessions, alert_id).batch_ids
    return alert_id, batch_id


def test_translations_and_an_edition_reach_each_reader_in_their_language(stack: Stack) -> None:
    join(stack, "ca-reader-0001", locale="fr-CA")
    join(stack, "fr-reader-0001", locale="fr")
    join(stack, "en-reader-0001", locale="en-GB")
    join(stack, "none-reader-0001")
    stack.start_worker()

    everyone = stack.wait_for_status(
        stack.post_alert(
            headline="Quake in the north",
            translations={
                "fr": {"headline": "Séisme dans le nord"},
                "fr-CA": {"headline": "Tremblement de terre", "url": "https://news.example/ca"},
            },
        )["id"]
    )
    titles = {
        token: (m["notification"]["title"], m["data"]["url"])
        for token, [m] in messages_by_token(stack).items()
    }
    assert titles == {
        "ca-reader-0001": ("Tremblement de terre", "https://news.example/ca"),
        "fr-reader-0001": ("Séisme dans le nord", "https://news.example/a"),
        "en-reader-0001": ("Quake in the north", "https://news.example/a"),
        "none-reader-0001": ("Quake in the north", "https://news.example/a"),
    }
    counts_add_up(everyone)

    stack.emulator.reset()
    edition = stack.wait_for_status(
        stack.post_alert(headline="Édition française", locale="fr", locales=["fr"])["id"]
    )
    assert sorted(stack.emulator.tokens()) == ["ca-reader-0001", "fr-reader-0001"]
    assert edition["counts"]["audience"] == 2
    counts_add_up(edition)


def test_lookup_tells_an_app_its_token_is_gone_after_fcm_pruned_it(stack: Stack) -> None:
    join(stack, "unregistered-dddd0001")
    stack.start_worker()
    stack.wait_for_status(stack.post_alert()["id"])
    response = stack.client.post(
        "/v1/subscriptions/lookup", json={"token": "unregistered-dddd0001"}
    )
    assert response.json["state"] == "unreachable"
