"""One page of an alert's audience planned in one PostgreSQL statement (a data-modifying CTE).

What :func:`notifier.pipeline.planner._plan_page` does with a handful of statements on SQLite
(read the page's device ids, keep the live ones of the alert's languages and apps, find the
alert's last batch number, insert one batch per app and one pending delivery per device), done
here by PostgreSQL in one statement: the device ids never travel to Python and back, and the
server answers four statements per page instead of ten (the alert's ``SELECT ... FOR UPDATE``
and ``UPDATE``, a ``SET LOCAL`` and this one). The per-device work (the index scans, the
inserts) is the same; what goes is the statements' fixed costs, and the reading of a topic's
whole remaining range that stale statistics caused (see ``_NO_BITMAPS``): the planner's
PostgreSQL CPU went from 8.3-8.8 to 5.2-5.7 µs per device over 100,000 devices, measured alone
in turns (``bench/pg_cpu.py --statements`` shows it per statement).

Its text is the same for every page and every alert (the filters are array parameters, NULL
for "no filter"), so each connection prepares it once. The alert's row is not touched here: the
caller holds it ``FOR UPDATE`` and updates its cursor and audience through the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from notifier.core.vocabulary import BatchStatus, DeliveryStatus, DeviceState

# The next page of distinct device ids above the cursor: each followed topic contributes at most
# one page of its (topic_id, device_id) index range, as page_of_audience() in the planner; merged
# in order and de-duplicated, the merge stops once it has the page. One text per number of topics.
_TOPIC_RANGE = (
    "(SELECT device_id FROM subscriptions"
    " WHERE topic_id = (SELECT id FROM topics WHERE slug = (CAST(:slugs AS varchar[]))[{n}])"
    " AND device_id > CAST(:after AS bigint) ORDER BY device_id LIMIT :page_size)"
)
_MERGED = "SELECT DISTINCT device_id FROM ({ranges}) AS u ORDER BY device_id LIMIT :page_size"
# An editor's test send: the test devices registered to the editor's key, as _test_audience().
_TEST_DEVICES = (
    "SELECT device_id FROM test_devices WHERE api_key_id = :api_key_id AND device_id > :after"
    " ORDER BY device_id LIMIT :page_size"
)

# ``live``: the page's devices that are active and, when the alert says so, speak one of its
# languages (the primary subtag of the locale with '_' read as '-', lowercased: what speaks_any()
# tests with = and LIKE; a device without a locale counts as the default language, ``:no_locale``)
# and belong to one of its apps. Found by primary key with the page as one array, as on SQLite.
# ``per_app``: one batch per app present, numbered after the alert's last batch in the order of
# the apps' names (byte order, as Python sorts them). The deliveries are inserted batch by batch in
# device order, as the portable path does, so a batch's rows sit together in the heap.
_PLAN_PAGE = """
WITH page AS ({page}),
live AS (
  SELECT d.id, d.app FROM devices AS d
  WHERE d.id = ANY(ARRAY(SELECT device_id FROM page)) AND d.state = :active
    AND (CAST(:languages AS text[]) IS NULL
         OR split_part(lower(replace(d.locale, '_', '-')), '-', 1) = ANY(CAST(:languages AS text[]))
         OR (d.locale IS NULL AND :no_locale))
    AND (CAST(:apps AS text[]) IS NULL OR d.app = ANY(CAST(:apps AS text[])))
),
per_app AS (
  SELECT app, min(id) AS first_id, max(id) AS last_id, count(*) AS size,
    (SELECT coalesce(max(seq), 0) FROM batches WHERE alert_id = :alert_id)
      + row_number() OVER (ORDER BY app COLLATE "C") AS seq
  FROM live GROUP BY app
),
new_batches AS (
  INSERT INTO batches (alert_id, seq, app, first_device_id, last_device_id, size, status,
                       attempts, created_at, enqueued_at)
  SELECT :alert_id, seq, app, first_id, last_id, size, :pending_batch, 0, :now, :now
  FROM per_app ORDER BY seq
  RETURNING id, seq, app, size
),
new_deliveries AS (
  INSERT INTO deliveries (alert_id, device_id, batch_id, status, silent, attempts, updated_at)
  SELECT :alert_id, live.id, b.id, :pending_delivery, false, 0, :now
  FROM live JOIN new_batches AS b ON b.app = live.app ORDER BY b.seq, live.id
)
SELECT last.device_id, b.id, b.size
FROM (SELECT max(device_id) AS device_id FROM page) AS last
LEFT JOIN new_batches AS b ON true
ORDER BY b.seq
"""


@cache
def plan_subscribed_page(topics: int) -> TextClause:
    """The statement for an alert of ``topics`` topics (one or more)."""
    ranges = " UNION ALL ".join(_TOPIC_RANGE.format(n=n) for n in range(1, topics + 1))
    return text(_PLAN_PAGE.format(page=_MERGED.format(ranges=ranges)))


PLAN_TEST_PAGE = text(_PLAN_PAGE.format(page=_TEST_DEVICES))
_NO_BITMAPS = text("SET LOCAL enable_bitmapscan = off")


@dataclass
class PageOutcome:
    """What one statement did: the page's last device id (None: no more devices) and batches."""

    last_device_id: int | None
    batches: list[tuple[int, int]]  # (batch id, devices), in seq order


def plan_page_in_one_statement(
    session: Session,
    alert_id: str,
    after: int,
    now: datetime,
    *,
    page_size: int,
    slugs: list[str] | None = None,
    test_key: int | None = None,
    languages: list[str] | None = None,
    no_locale: bool = False,
    apps: list[str] | None = None,
) -> PageOutcome:
    """Plan the page after ``after``: of ``slugs``' followers, or of ``test_key``'s test devices.

    ``languages`` (primary subtags) and ``apps`` restrict the audience, None for everyone;
    ``no_locale``: a device without a locale is in the audience when ``languages`` is given.
    """
    params: dict[str, object] = {
        "alert_id": alert_id,
        "after": after,
        "page_size": page_size,
        "now": now,
        "active": DeviceState.ACTIVE.value,
        "languages": languages,
        "no_locale": no_locale,
        "apps": apps,
        "pending_batch": BatchStatus.PENDING.value,
        "pending_delivery": DeliveryStatus.PENDING.value,
    }
    if test_key is not None:
        statement, params["api_key_id"] = PLAN_TEST_PAGE, test_key
    elif slugs:
        statement, params["slugs"] = plan_subscribed_page(len(slugs)), list(slugs)
    else:
        return PageOutcome(None, [])  # no topics, no audience (as page_of_audience)
    # Without fresh statistics (a large import not yet analyzed) PostgreSQL estimates a topic's
    # range at a few rows and reads it as a bitmap, all of it above the cursor, then sorts it
    # to keep 500: each page then costs as much as the rest of the audience. Without bitmaps
    # the range is read in index order and stops at the page, whatever the statistics say.
    session.execute(_NO_BITMAPS)
    rows = session.execute(statement, params).all()
    last = rows[0][0] if rows else None
    return PageOutcome(
        last, [(batch_id, size) for _, batch_id, size in rows if batch_id is not None]
    )
