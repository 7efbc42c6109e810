"""A delivery's one update stays on its page (PostgreSQL): HOT, no index entries written.

The planner inserts a page's deliveries pending and the send records them, each row growing by
FCM's message name. With the room deliveries' fillfactor leaves (migration 0005), every row's new
version fits on the page it was inserted in, so PostgreSQL updates it in place (HOT) instead of
writing it elsewhere with a new entry in each index (docs/performance.md). A row's ``ctid``
gives its page: the same page before and after is what makes the update HOT, since none of the
updated columns is indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text

from notifier.core.db import make_engine, make_session_factory, transaction
from notifier.fcm.types import Accepted, Outcome, PushAlert, Target
from notifier.pipeline import planner
from notifier.pipeline.quota import LocalTokenBucket
from notifier.pipeline.send import send_batch
from notifier.subscriptions.service import subscribe
from notifier.subscriptions.topics import load_catalogue, sync_topics
from tests.factories import due_alert

DEVICES = 1_200  # several pages of deliveries, in three batches
PROJECT = "a-newsroom-s-project-id-of-30c"  # FCM project ids are 6 to 30 characters


class AcceptingSender:
    """Accepts every device with a message name as long as FCM's."""

    def send_batch(
        self, alert: PushAlert, targets: Sequence[Target], *, latencies: list[float] | None = None
    ) -> list[Outcome]:
        return [
            Accepted(
                t.device_id,
                f"projects/{PROJECT}/messages/0:{1500415314455276 + t.device_id}%31bd1c9631bd1c96",
            )
            for t in targets
        ]


def _pages(engine: object, alert_id: str) -> dict[int, int]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            text(
                "SELECT device_id, (ctid::text::point)[0]::int FROM deliveries "
                "WHERE alert_id = :alert"
            ),
            {"alert": alert_id},
        )
        return dict(rows.all())


def test_recording_a_sent_batch_leaves_every_delivery_on_its_page(pg_url: str) -> None:
    engine = make_engine(pg_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        sync_topics(session, load_catalogue(Path("config/topics.toml")))
    with transaction(sessions) as session:
        for i in range(DEVICES):
            subscribe(
                session,
                token=f"hot-{i:05d}:APA91b{'x' * 120}",
                platform="android",
                topics=["israel"],
            )
    with transaction(sessions) as session:
        alert_id = due_alert(session).id
    batch_ids = planner.plan_slice(sessions, alert_id).batch_ids
    planned = _pages(engine, alert_id)
    assert len(planned) == DEVICES

    for batch_id in batch_ids:
        result = send_batch(
            sessions,
            batch_id,
            sender=AcceptingSender(),
            limiter=LocalTokenBucket(600_000),
            lease_seconds=60,
            max_attempts=3,
        )
        assert result.state == "done"

    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT status, count(*) FROM deliveries WHERE alert_id = :alert GROUP BY status"),
            {"alert": alert_id},
        ).all()
    assert statuses == [("sent", DEVICES)]
    moved = {d for d, page in _pages(engine, alert_id).items() if page != planned[d]}
    assert moved == set()
    engine.dispose()
