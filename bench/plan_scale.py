"""Planner scale: plan one alert for N subscribed devices (default 1,000,000) on PostgreSQL.

Shows that the planner's work per batch stays constant (keyset pages over the subscriptions
index, not OFFSET) and that memory stays flat (no list of all devices or tokens), by printing
the time per page for the first and the last pages and the process's peak RSS, against a
baseline in the same run: the same audience read with OFFSET paging, as a naive planner would.

    .venv/bin/python bench/plan_scale.py                 # 1,000,000 devices
    .venv/bin/python bench/plan_scale.py --devices 200000

With readers' preferences (the default; ``--no-preferences`` for today's audience): devices
speak five languages, a third have quiet hours in effect now (half silent, half skip), a fifth
have a daily cap (some already reached). Then it also plans an edition's alert (one language in
five) and times the send path's decisions per batch (lease, quiet hours, the cap's locked count
and records, recording the outcomes) with preferences and, as the baseline, without them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import time
from datetime import datetime
from urllib.parse import quote

from _common import NullSender
from sqlalchemy import select, text

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core import migrate
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import Batch, Subscription, Topic, utcnow
from notifier.core.settings import normalise_database_url
from notifier.pipeline.planner import PAGE_SIZE, _plan_page, page_of_audience
from notifier.pipeline.quota import LocalTokenBucket
from notifier.pipeline.send import send_batch
from notifier.subscriptions.bulk_import import import_devices
from notifier.subscriptions.topics import load_catalogue, sync_topics


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


LANGUAGES = ("en", "fr", "he", "ar", "fa")


def lines(n: int, preferences: bool) -> object:
    for i in range(n):
        topics = ["israel", "breaking"] if i % 3 == 0 else ["israel"]
        line: dict[str, object] = {
            "token": f"scale-{i:08d}:APA91b{'x' * 120}",
            "platform": "android",
            "topics": topics,
        }
        if preferences:
            line["locale"] = LANGUAGES[i % len(LANGUAGES)]
            line["timezone"] = "Asia/Jerusalem"
        yield json.dumps(line).encode()


# Preferences are set on the devices of every other batch (ids in alternate blocks of 500), so
# that the send path's baseline is the same alert's other batches: same tables, same statistics.
WITH_PREFERENCES = "((id - 1) / 500) % 2 = 0"


def set_preferences(engine: object, now: datetime) -> None:
    """In every other block of 500 devices, a third in quiet hours now (half silent, half skip)
    and a fifth capped at 3."""
    local = now.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Jerusalem"))
    minute = local.hour * 60 + local.minute
    start, end = (minute - 60) % 1440, (minute + 60) % 1440
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "UPDATE devices SET quiet_start = :s, quiet_end = :e, "
                "quiet_mode = CASE WHEN id % 2 = 0 THEN 'silent' ELSE 'skip' END "
                f"WHERE id % 3 = 0 AND {WITH_PREFERENCES}"
            ),
            {"s": start, "e": end},
        )
        conn.execute(
            text(f"UPDATE devices SET max_per_day = 3 WHERE id % 5 = 0 AND {WITH_PREFERENCES}")
        )


def batch_ids(sessions: object, alert_id: str) -> list[int]:
    with sessions() as session:  # type: ignore[operator]
        return list(
            session.scalars(select(Batch.id).where(Batch.alert_id == alert_id).order_by(Batch.seq))
        )


def time_send(sessions: object, batch_id: int) -> float:
    """Seconds to lease, decide, send (to a sender that accepts at once) and record a batch."""
    started = time.perf_counter()
    send_batch(
        sessions,  # type: ignore[arg-type]
        batch_id,
        sender=NullSender(),
        limiter=LocalTokenBucket(10**9),
        lease_seconds=60,
        max_attempts=3,
    )
    return time.perf_counter() - started


def plan_all(sessions: object, alert_id: str, label: str) -> tuple[list[float], int]:
    log(f"planning {label} (pages of 500, one transaction each)")
    page_times: list[float] = []
    devices = 0
    while True:
        started = time.perf_counter()
        with sessions.begin() as session:  # type: ignore[attr-defined]
            step = _plan_page(session, alert_id, utcnow())
        page_times.append(time.perf_counter() - started)
        if step is None:
            break
        devices += step[1]
        if len(page_times) % 400 == 0:
            log(f"  {devices:,} devices planned, last page {page_times[-1] * 1000:.1f} ms")
    page_times.pop()  # the final, empty page
    return page_times, devices


def new_alert(
    sessions: object,
    headline: str,
    topics: tuple[str, ...] = ("israel", "breaking"),
    **fields: object,
) -> str:
    with transaction(sessions) as session:  # type: ignore[arg-type]
        return create_alert(
            session,
            AlertDraft(
                headline=headline,
                url="https://news.example/s",
                topics=topics,
                **fields,  # type: ignore[arg-type]
            ),
            default_hold=0,
            default_ttl=3600,
        ).id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-preferences", dest="preferences", action="store_false")
    args = parser.parse_args()
    # The first and the last 20 pages of one topic's followers (a share of all) are timed apart.
    if args.devices < 200 * PAGE_SIZE:
        parser.error(f"--devices must be at least {200 * PAGE_SIZE:,}")
    base = normalise_database_url(args.database)
    schema = f"plan_{secrets.token_hex(4)}"
    admin = make_engine(base, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            from pathlib import Path

            sync_topics(session, load_catalogue(Path("config/topics.toml")))
        log(f"importing {args.devices:,} devices")
        import_devices(engine, lines(args.devices, args.preferences))  # type: ignore[arg-type]
        if args.preferences:
            set_preferences(engine, utcnow())
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        rss_before = peak_rss_mib()

        alert_id = new_alert(sessions, "Scale")
        page_times, devices = plan_all(sessions, alert_id, "every reader")
        rss_planning = peak_rss_mib()

        log("baseline: OFFSET paging of the same audience (first and last 20 pages)")
        topic_ids = list(
            sessions().scalars(select(Topic.id).where(Topic.slug.in_(["israel", "breaking"])))
        )

        def offset_page(offset: int) -> float:
            started = time.perf_counter()
            with sessions() as session:
                session.scalars(
                    select(Subscription.device_id)
                    .where(Subscription.topic_id.in_(topic_ids))
                    .distinct()
                    .order_by(Subscription.device_id)
                    .offset(offset)
                    .limit(PAGE_SIZE)
                ).all()
            return time.perf_counter() - started

        def keyset_page(after: int) -> float:
            started = time.perf_counter()
            with sessions() as session:
                page_of_audience(session, topic_ids, after)
            return time.perf_counter() - started

        with sessions() as session:
            ids = list(
                session.scalars(
                    select(Subscription.device_id)
                    .where(Subscription.topic_id == topic_ids[0])
                    .order_by(Subscription.device_id)
                )
            )
        offset_first = [offset_page(i * PAGE_SIZE) for i in range(20)]
        offset_last = [offset_page(devices - (20 - i) * PAGE_SIZE) for i in range(20)]
        keyset_first = [keyset_page(ids[i * PAGE_SIZE]) for i in range(20)]
        keyset_last = [keyset_page(ids[-(20 - i) * PAGE_SIZE]) for i in range(20)]
        del ids

        def ms(values: list[float]) -> str:
            return f"{sum(values) / len(values) * 1000:.1f} ms"

        print()
        print(f"devices planned            {devices:,} in {len(page_times):,} batches")
        print(
            f"planning time              {sum(page_times):.1f} s "
            f"({devices / sum(page_times):,.0f} devices/s)"
        )
        print(f"whole page (read + record a batch of 500), first 100  {ms(page_times[:100])}")
        print(f"whole page (read + record a batch of 500), last 100   {ms(page_times[-100:])}")
        print(f"audience read, keyset, first 20 pages   {ms(keyset_first)}")
        print(f"audience read, keyset, last 20 pages    {ms(keyset_last)}")
        print(f"audience read, OFFSET, first 20 pages   {ms(offset_first)}   (baseline)")
        print(f"audience read, OFFSET, last 20 pages    {ms(offset_last)}   (baseline)")
        print(
            f"peak RSS after planning    {rss_planning:.0f} MiB "
            f"(after the import, before planning: {rss_before:.0f} MiB)"
        )
        if args.preferences:
            edition = new_alert(sessions, "Édition", locales=("fr",))
            edition_times, edition_devices = plan_all(sessions, edition, "an edition (fr)")
            print(
                f"edition (fr): {edition_devices:,} devices in {len(edition_times):,} "
                f"transactions, {sum(edition_times):.1f} s"
            )
            print(f"edition page, first 100   {ms(edition_times[:100])}")
            print(f"edition page, last 100    {ms(edition_times[-100:])}")
            # The alert's even batches hold the devices with preferences, the odd ones none:
            # timed in turns, so whatever else the machine does weighs on both sides alike.
            log("send path: first and last 40 batches, with preferences and without, in turns")
            ids = batch_ids(sessions, alert_id)
            times = {seq: time_send(sessions, ids[seq]) for seq in [*range(40), *range(-40, 0)]}
            with_first = [times[i] for i in range(0, 40, 2)]
            base_first = [times[i] for i in range(1, 40, 2)]
            with_last = [times[i] for i in range(-40, 0, 2)]
            base_last = [times[i] for i in range(-39, 0, 2)]
            print(f"send a batch, preferences, first 20     {ms(with_first)}")
            print(f"send a batch, preferences, last 20      {ms(with_last)}")
            print(f"send a batch, none (baseline), first 20  {ms(base_first)}")
            print(f"send a batch, none (baseline), last 20   {ms(base_last)}")
        engine.dispose()
        return 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
