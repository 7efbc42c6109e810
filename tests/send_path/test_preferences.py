"""Readers' preferences decided in-process: the real planner, batch sender and recording on
SQLite, a fake sender. Each decision is checked on the deliveries, the counters and what the
sender was asked to send; the counts add up in every case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from notifier.core.models import Delivery, DeviceSend
from notifier.core.vocabulary import Urgency
from notifier.fcm.types import Target
from notifier.pipeline import planner
from notifier.pipeline.sweeper import forget_old_sends
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import FakeSender, prune

# 23:30 UTC is 01:30 in Jerusalem (winter, +02:00): inside a 22:00-07:00 window.
NIGHT = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
DAY = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
QUIET = {"start": "22:00", "end": "07:00"}
ZONE = "Asia/Jerusalem"


def send_all(send_path: SendPath, alert_id: str, sender: FakeSender, **kwargs: object) -> None:
    for batch_id in send_path.plan(alert_id):
        send_path.send(batch_id, sender, **kwargs)  # type: ignore[arg-type]


def targets(sender: FakeSender) -> dict[str, Target]:
    return {t.token: t for _, batch in sender.requests for t in batch}


def test_an_edition_alert_is_planned_only_for_readers_of_its_languages(
    send_path: SendPath,
) -> None:
    french = [
        send_path.add_device(f"fr-{tag}-0001", locale=tag) for tag in ("fr", "fr-CA", "FR_be")
    ]
    send_path.add_device("en-0001", locale="en-GB")
    send_path.add_device("none-0001")  # no locale: the default, en
    send_path.add_device("fry-0001", locale="fry")  # Frisian is not French
    alert_id = send_path.new_alert(locales=("fr",))
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    assert sorted(sender.sent_tokens) == sorted(french)
    assert send_path.alert(alert_id).audience == 3
    send_path.assert_counts_add_up(alert_id)


def test_a_device_without_a_locale_counts_as_the_default_language(send_path: SendPath) -> None:
    send_path.add_device("none-0001")
    send_path.add_device("en-0001", locale="en-US")
    send_path.add_device("fr-0001", locale="fr")
    alert_id = send_path.new_alert(locales=("en",))
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    assert sorted(sender.sent_tokens) == ["en-0001", "none-0001"]


def test_each_device_is_sent_the_best_translation_for_its_locale(send_path: SendPath) -> None:
    for token, locale in [("ca-0001", "fr-CA"), ("be-0001", "fr-BE"), ("de-0001", "de")]:
        send_path.add_device(token, locale=locale)
    translations = {
        "fr": {"headline": "Séisme", "url": "https://news.example/fr"},
        "fr-CA": {"headline": "Tremblement", "body": "Détails"},
    }
    alert_id = send_path.new_alert(locale="en", translations=translations)
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    sent = targets(sender)
    canada, belgium = sent["ca-0001"].text, sent["be-0001"].text
    assert canada is not None and belgium is not None
    assert (canada.headline, canada.body, canada.url) == (
        "Tremblement",
        "Détails",
        "https://news.example/a",
    )
    assert (belgium.headline, belgium.body, belgium.url) == (
        "Séisme",
        None,
        "https://news.example/fr",
    )
    assert sent["de-0001"].text is None  # the alert's own text
    send_path.assert_counts_add_up(alert_id)


def test_quiet_hours_in_silent_mode_send_silently_and_count_it(send_path: SendPath) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device("quiet-0001", timezone=ZONE, quiet_hours=QUIET)
    send_path.add_device("awake-0001", timezone="America/New_York", quiet_hours=QUIET)  # 18:30
    send_path.add_device("plain-0001")
    alert_id = send_path.new_alert()
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    silent = {token for token, t in targets(sender).items() if t.silent}
    assert silent == {"quiet-0001"}
    alert = send_path.alert(alert_id)
    assert (alert.sent, alert.silent, alert.suppressed) == (3, 1, 0)
    send_path.assert_counts_add_up(alert_id)


def test_quiet_hours_in_skip_mode_suppress_with_the_reason(send_path: SendPath) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device("skip-0001", timezone=ZONE, quiet_hours={**QUIET, "mode": "skip"})
    send_path.add_device("plain-0001")
    alert_id = send_path.new_alert()
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    assert sender.sent_tokens == ["plain-0001"]
    rows = send_path.deliveries(alert_id)
    assert (rows["skip-0001"].status, rows["skip-0001"].error_code) == (
        "suppressed",
        "quiet_hours",
    )
    alert = send_path.alert(alert_id)
    assert (alert.suppressed, alert.suppressed_quiet_hours, alert.status) == (1, 1, "sent")
    assert send_path.counter("notifier_suppressed_total") == 1
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_whose_every_device_is_suppressed_finishes_without_a_send(
    send_path: SendPath,
) -> None:
    send_path.clock.now = NIGHT
    for i in range(3):
        send_path.add_device(f"skip-{i:04d}", timezone=ZONE, quiet_hours={**QUIET, "mode": "skip"})
    alert_id = send_path.new_alert()
    sender = FakeSender()

    send_all(send_path, alert_id, sender)

    assert sender.sent_tokens == []
    alert = send_path.alert(alert_id)
    assert (alert.status, alert.suppressed) == ("sent", 3)
    send_path.assert_counts_add_up(alert_id)


def test_the_daily_cap_lets_through_its_number_in_24_hours_then_suppresses(
    send_path: SendPath,
) -> None:
    send_path.add_device("capped-0001", max_per_day=2)
    send_path.add_device("free-0001")
    sender = FakeSender()
    alerts = []
    for _ in range(3):
        alerts.append(send_path.new_alert())
        send_all(send_path, alerts[-1], sender)
        send_path.clock.advance(3600)

    assert sender.sent_tokens.count("capped-0001") == 2
    assert sender.sent_tokens.count("free-0001") == 3
    third = send_path.deliveries(alerts[2])["capped-0001"]
    assert (third.status, third.error_code) == ("suppressed", "daily_cap")
    assert send_path.alert(alerts[2]).suppressed_daily_cap == 1
    for alert_id in alerts:
        send_path.assert_counts_add_up(alert_id)

    send_path.clock.advance(22 * 3600)  # the first send is now more than 24 hours old
    fourth = send_path.new_alert()
    send_all(send_path, fourth, sender)
    assert sender.sent_tokens.count("capped-0001") == 3


def test_the_default_cap_applies_to_readers_who_chose_none(send_path: SendPath) -> None:
    send_path.add_device("default-0001")
    send_path.add_device("own-0001", max_per_day=5)
    sender = FakeSender()
    for _ in range(2):
        send_all(send_path, send_path.new_alert(), sender, default_max_per_day=1)

    assert sender.sent_tokens.count("default-0001") == 1
    assert sender.sent_tokens.count("own-0001") == 2


def test_a_send_that_fcm_refuses_gives_its_place_under_the_cap_back(
    send_path: SendPath,
) -> None:
    send_path.add_device("capped-0001", max_per_day=1)
    send_path.add_device("other-0001", max_per_day=1)
    alert_id = send_path.new_alert()

    send_all(send_path, alert_id, FakeSender(script={"capped-0001": prune()}))

    with send_path.runtime.sessions() as session:
        held = set(session.scalars(select(DeviceSend.device_id)))
    assert len(held) == 1  # only the device that FCM accepted holds a place


def test_urgent_alerts_pass_quiet_hours_audibly_and_the_cap_without_counting(
    send_path: SendPath,
) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device(
        "strict-0001", timezone=ZONE, quiet_hours={**QUIET, "mode": "skip"}, max_per_day=1
    )
    send_path.add_device("silent-0001", timezone=ZONE, quiet_hours=QUIET, max_per_day=1)
    sender = FakeSender()
    urgent = [send_path.new_alert(urgency=Urgency.URGENT) for _ in range(2)]
    for alert_id in urgent:
        send_all(send_path, alert_id, sender)

    assert sorted(sender.sent_tokens) == sorted(["strict-0001", "silent-0001"] * 2)
    assert not any(t.silent for _, batch in sender.requests for t in batch)
    with send_path.runtime.sessions() as session:
        assert session.scalar(select(DeviceSend.device_id)) is None  # nothing counted
    send_path.clock.now = DAY
    normal = send_path.new_alert()
    send_all(send_path, normal, sender)
    assert send_path.alert(normal).sent == 2  # the cap of 1 is still free
    for alert_id in [*urgent, normal]:
        send_path.assert_counts_add_up(alert_id)


def test_a_reader_without_urgent_overrides_gets_urgent_alerts_like_normal_ones(
    send_path: SendPath,
) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device(
        "no-override-0001",
        timezone=ZONE,
        quiet_hours=QUIET,
        max_per_day=1,
        urgent_overrides=False,
    )
    sender = FakeSender()
    first, second = (send_path.new_alert(urgency=Urgency.URGENT) for _ in range(2))
    send_all(send_path, first, sender)
    send_all(send_path, second, sender)

    [(_, [target])] = sender.requests
    assert target.silent
    assert send_path.deliveries(second)["no-override-0001"].error_code == "daily_cap"
    assert send_path.alert(first).silent == 1
    for alert_id in (first, second):
        send_path.assert_counts_add_up(alert_id)


def test_a_cap_of_one_lets_one_of_two_alerts_in_flight_at_once_through(
    send_path: SendPath,
) -> None:
    """Two alerts' batches leased together: the first to decide takes the place."""
    send_path.add_device("capped-0001", max_per_day=1)
    first, second = send_path.new_alert(), send_path.new_alert()
    [first_batch], [second_batch] = send_path.plan(first), send_path.plan(second)
    sender = FakeSender(during_send=lambda: send_path.send(second_batch, FakeSender()))

    send_path.send(first_batch, sender)

    outcomes = sorted(
        (send_path.deliveries(a)["capped-0001"].status for a in (first, second)), reverse=True
    )
    assert outcomes == ["suppressed", "sent"]
    for alert_id in (first, second):
        send_path.assert_counts_add_up(alert_id)


def test_silent_marks_stay_on_the_delivery_row(send_path: SendPath) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device("quiet-0001", timezone=ZONE, quiet_hours=QUIET)
    alert_id = send_path.new_alert()
    send_all(send_path, alert_id, FakeSender())
    with send_path.runtime.sessions() as session:
        assert session.scalar(select(Delivery.silent).where(Delivery.alert_id == alert_id))


def test_the_sweeper_forgets_cap_records_once_they_no_longer_count(send_path: SendPath) -> None:
    send_path.add_device("capped-0001", max_per_day=3)
    send_all(send_path, send_path.new_alert(), FakeSender())
    send_path.clock.advance(3600)
    recent = send_path.new_alert()
    send_all(send_path, recent, FakeSender())

    forgotten = forget_old_sends(
        send_path.runtime.sessions, send_path.clock() + timedelta(hours=24)
    )

    assert forgotten == 1
    with send_path.runtime.sessions() as session:
        assert list(session.scalars(select(DeviceSend.alert_id))) == [recent]


def test_silent_sends_and_suppressions_are_counted_for_metrics(send_path: SendPath) -> None:
    send_path.clock.now = NIGHT
    send_path.add_device("quiet-0001", timezone=ZONE, quiet_hours=QUIET)
    send_path.add_device("capped-0001", max_per_day=1)
    for _ in range(2):
        send_all(send_path, send_path.new_alert(), FakeSender())

    assert send_path.counter("notifier_silent_sends_total") == 2
    assert send_path.counter("notifier_suppressed_total") == 1


def test_an_edition_pages_past_other_readers_in_short_transactions(send_path: SendPath) -> None:
    """40 English readers (10 pages of 4) before the one French reader: no page transaction
    reads more than ``MAX_EMPTY_PAGES`` pages, and the French reader is still found."""
    send_path.add_devices("en-reader", 40)
    send_path.add_device("fr-reader-0001", locale="fr")
    alert_id = send_path.new_alert(locales=("fr",))

    first = planner.plan_slice(
        send_path.runtime.sessions, alert_id, max_pages=1, now=send_path.clock()
    )
    assert (first.state, first.batch_ids) == ("continue", [])
    assert send_path.alert(alert_id).plan_cursor > 0

    sender = FakeSender()
    send_all(send_path, alert_id, sender)
    assert sender.sent_tokens == ["fr-reader-0001"]
    assert send_path.alert(alert_id).audience == 1
    send_path.assert_counts_add_up(alert_id)
