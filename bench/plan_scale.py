"""Planner scale: plan one alert for N subscribed devices (default 1,000,000) on PostgreSQL.

Shows that the planner's work per batch stays constant (keyset pages over the subscriptions
index, not OFFSET) and that memory stays flat (no list of all devices or tokens), by printing
the time per page for the first and the last pages and the process's peak RSS, against a
baseline in the same run: the same audience read with OFFSET paging, as a naive planner would.

    .venv/bin/python bench/plan_scale.py                 # 1,000,000 devices
    .venv/bin/python bench/plan_scale.py --devices 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import time
from urllib.parse import quote

from sqlalchemy import select, text

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core import migrate
from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.core.models import Subscription, Topic, utcnow
from notifier.core.settings import normalise_database_url
from notifier.pipeline.planner import PAGE_SIZE, _plan_page, page_of_audience
from notifier.subscriptions.bulk_import import import_devices
from notifier.subscriptions.topics import load_catalogue, sync_topics


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lines(n: int) -> object:
    for i in range(n):
        topics = ["israel", "breaking"] if i % 3 == 0 else ["israel"]
        yield json.dumps(
            {"token": f"scale-{i:08d}:APA91b{'x' * 120}", "platform": "android", "topics": topics}
        ).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "NOTIFIER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
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
        import_devices(engine, lines(args.devices))  # type: ignore[arg-type]
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        rss_before = peak_rss_mib()

        with transaction(sessions) as session:
            alert = create_alert(
                session,
                AlertDraft(
                    headline="Scale", url="https://news.example/s", topics=("israel", "breaking")
                ),
                default_hold=0,
                default_ttl=3600,
            )
            alert_id = alert.id
        log("planning (pages of 500, one transaction each)")
        page_times: list[float] = []
        devices = 0
        while True:
            started = time.perf_counter()
            with sessions.begin() as session:
                step = _plan_page(session, alert_id, utcnow())
            page_times.append(time.perf_counter() - started)
            if step is None:
                break
            devices += step[1]
            if len(page_times) % 200 == 0:
                log(f"  {devices:,} devices planned, last page {page_times[-1] * 1000:.1f} ms")
        page_times.pop()  # the final, empty page
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
        engine.dispose()
        return 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
