"""Bulk import of devices and their topics from JSON lines, as a newsroom leaving another provider.

Each line has the shape ``POST /v1/subscriptions`` accepts (``{"token", "platform", "topics",
"locale"?, "timezone"?, "app"?}``) and is validated by the same annotations, so a device that can be
imported could also have subscribed itself, and vice versa.

The import is built for millions of lines:

- The file is streamed and written in batches; memory stays flat whatever the file's size.
- Every batch is its own transaction, so a crash or a Ctrl-C loses at most one batch, and since the
  import is idempotent the remedy is simply to run it again.
- PostgreSQL gets ``COPY`` into a temporary table and one set-based upsert per batch; SQLite (the
  embedded development mode) gets plain ``executemany`` statements.

Rules a migrating newsroom can rely on:

- Idempotent: importing the same file twice leaves the same rows; the second run reports every
  device as updated and adds no subscriptions.
- Topics are added to what a known device already follows, never removed (as a subscribe does).
  ``platform`` is overwritten; ``locale`` and ``timezone`` are overwritten only when given.
- A token that appears on several lines of one batch is one device: its topics are merged and the
  last line's platform, locale and timezone win. (A repeat far away in the file lands in another
  batch and is then counted once as imported and once as updated.)
- A line with an unknown topic is rejected whole, naming the slugs, so that fixing the catalogue
  (or the file) and re-running imports it exactly as meant rather than half of it.
- Devices that FCM has already pruned (``state = 'dead'``) stay dead and untouched. An export from
  the previous provider is a snapshot that may predate the prune, whereas UNREGISTERED from FCM is
  definitive; reviving those tokens would send every alert to devices known to be gone and make a
  re-run change state. A token that really comes back alive is revived by the app's own subscribe
  call, which is the one witness that it works again.
- ``last_seen_at`` of a known device is left alone: an import line is not a sighting of the device,
  and the retention sweep must keep judging real activity. New devices start their clock now.
- Rejection reasons never contain a token: registration tokens are bearer secrets.
- ``app`` names the app (Firebase project) that issued the token, the default app when omitted;
  a line naming an app the deployment does not serve is rejected. A token is a device of its app:
  the same token on lines of two apps is two devices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import Connection, Engine, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from notifier.core.apps import DEFAULT_APP
from notifier.core.models import Device, Subscription, utcnow
from notifier.core.vocabulary import DeviceState
from notifier.subscriptions.requests import SubscribeRequest
from notifier.subscriptions.topics import active_topics

DEFAULT_BATCH_SIZE = 5000
MAX_KEPT_REJECTIONS = 1000
MAX_LINE_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
# A field name is echoed in a rejection only when it looks like one; a long opaque key could be a
# token (exports keyed by token are common), and tokens must never reach the output.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$")
_SQLITE_IN_CHUNK = 500  # well under SQLite's bound-parameter limit, whatever its build
_DEVICES = cast(Table, Device.__table__)
_SUBSCRIPTIONS = cast(Table, Subscription.__table__)


class DeviceLine(SubscribeRequest):
    """One import line: exactly what a device could send to ``POST /v1/subscriptions``."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that was not imported, and why (never quoting the token)."""

    line: int
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``imported`` counts new devices, ``updated`` known ones."""

    lines: int = 0
    accepted: int = 0
    imported: int = 0
    updated: int = 0
    left_dead: int = 0
    subscriptions_added: int = 0
    rejected: int = 0
    # Only the first MAX_KEPT_REJECTIONS are kept, so a wholly wrong file cannot exhaust memory;
    # ``on_reject`` sees every one of them.
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def blank(self) -> int:
        return self.lines - self.accepted - self.rejected

    @property
    def complete(self) -> bool:
        """Every non-blank line was accepted."""
        return self.rejected == 0


@dataclass(slots=True)
class _PendingDevice:
    """A token's merged lines within one batch."""

    platform: str
    locale: str | None
    timezone: str | None
    topic_ids: set[int]

    def merge(self, line: DeviceLine, topic_ids: Iterable[int]) -> None:
        self.platform = line.platform
        self.locale = line.locale if line.locale is not None else self.locale
        self.timezone = line.timezone if line.timezone is not None else self.timezone
        self.topic_ids.update(topic_ids)


@dataclass(frozen=True, slots=True)
class _BatchResult:
    imported: int
    updated: int
    left_dead: int
    subscriptions_added: int


# Keyed by (app, token): a token is unique within its app.
_Batch = dict[tuple[str, str], _PendingDevice]


def import_devices(
    engine: Engine,
    lines: Iterable[bytes],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    on_reject: Callable[[Rejection], None] | None = None,
    apps: tuple[str, ...] = (DEFAULT_APP,),
    default_app: str = DEFAULT_APP,
) -> ImportReport:
    """Import devices from JSON ``lines`` (raw bytes, as read from a file opened in binary mode).

    ``on_progress`` is called after each committed batch with the number of bytes it consumed, so
    a progress bar only ever shows work that is safely stored. ``on_reject`` is called for every
    rejected line, in file order (the report keeps only the first ones). ``apps`` are the ids of
    the apps a line may name, ``default_app`` the one of a line that names none.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ImportReport()
    with engine.connect() as conn:
        with conn.begin():
            topics = active_topics_of(conn)
        write = _write_postgresql if conn.dialect.name == "postgresql" else _write_sqlite
        batch: _Batch = {}
        consumed = read = 0

        def flush() -> None:
            nonlocal batch, consumed, read
            if batch:
                with conn.begin():
                    result = write(conn, batch, utcnow())
                report.imported += result.imported
                report.updated += result.updated
                report.left_dead += result.left_dead
                report.subscriptions_added += result.subscriptions_added
            if on_progress is not None and consumed:
                on_progress(consumed)
            batch, consumed, read = {}, 0, 0

        for raw in lines:
            report.lines += 1
            consumed += len(raw)
            read += 1
            outcome = parse_line(raw, report.lines, topics, apps)
            if isinstance(outcome, Rejection):
                report.rejected += 1
                if len(report.rejections) < MAX_KEPT_REJECTIONS:
                    report.rejections.append(outcome)
                if on_reject is not None:
                    on_reject(outcome)
            elif outcome is not None:
                report.accepted += 1
                line, topic_ids = outcome
                key = (line.app or default_app, line.token)
                pending = batch.get(key)
                if pending is None:
                    batch[key] = _PendingDevice(
                        line.platform, line.locale, line.timezone, set(topic_ids)
                    )
                else:
                    pending.merge(line, topic_ids)
            # Counting lines read too keeps the progress bar moving through a run of rejections.
            if len(batch) >= batch_size or read >= batch_size:
                flush()
        flush()
    return report


def active_topics_of(conn: Connection) -> dict[str, int]:
    """Slug -> id of the topics a line may name (the active catalogue)."""
    with Session(bind=conn) as session:
        return active_topics(session)


def parse_line(
    raw: bytes, line_no: int, topics: dict[str, int], apps: tuple[str, ...] = (DEFAULT_APP,)
) -> tuple[DeviceLine, list[int]] | Rejection | None:
    """Validate one line: the device and its topic ids, a rejection, or None for a blank line."""
    if line_no == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if not raw.strip():
        return None
    if len(raw) > MAX_LINE_BYTES:
        return Rejection(line_no, f"line longer than {MAX_LINE_BYTES // 1024} KiB")
    try:
        line = DeviceLine.model_validate_json(raw)
    except ValidationError as exc:
        return Rejection(
            line_no, describe_errors(exc.errors(include_input=False, include_url=False))
        )
    unknown = sorted({slug for slug in line.topics if slug not in topics})
    if unknown:
        return Rejection(line_no, f"unknown topic(s): {', '.join(unknown)}")
    if line.app is not None and line.app not in apps:
        return Rejection(line_no, f"unknown app {line.app!r}")
    return line, [topics[slug] for slug in line.topics]


def describe_errors(errors: list[ErrorDetails]) -> str:
    """A one-line reason built from field names and pydantic's messages, never from the input."""
    if errors and errors[0]["type"] == "json_invalid":
        return errors[0]["msg"]
    parts = []
    for error in errors[:5]:
        if error["type"] == "extra_forbidden":
            name = str(error["loc"][-1]) if error["loc"] else ""
            parts.append(f"unknown field {name!r}" if _FIELD_NAME.match(name) else "unknown field")
            continue
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts)


# PostgreSQL: COPY the batch into a temporary table, then one statement upserts the devices,
# adds the subscriptions and counts what happened. ``xmax = 0`` tells a fresh insert from a
# conflict update. Rows are taken in token order so that concurrent writers lock in one order.
_PG_STAGE = """
CREATE TEMPORARY TABLE devices_import (
    app text NOT NULL,
    token text NOT NULL,
    platform text NOT NULL,
    locale text,
    timezone text,
    topic_ids integer[] NOT NULL
) ON COMMIT DROP
"""
_PG_COPY = "COPY devices_import (app, token, platform, locale, timezone, topic_ids) FROM STDIN"
_PG_UPSERT = """
WITH upserted AS (
    INSERT INTO devices AS d
        (app, token, platform, locale, timezone, state, created_at, last_seen_at)
    SELECT app, token, platform, locale, timezone, 'active', :now, :now
    FROM devices_import ORDER BY app, token
    ON CONFLICT (app, token) DO UPDATE
        SET platform = EXCLUDED.platform,
            locale = COALESCE(EXCLUDED.locale, d.locale),
            timezone = COALESCE(EXCLUDED.timezone, d.timezone)
        WHERE d.state = 'active'
    RETURNING d.id, d.app, d.token, (d.xmax = 0) AS created
), added AS (
    INSERT INTO subscriptions (topic_id, device_id, created_at)
    SELECT t.topic_id, u.id, :now
    FROM upserted u
    JOIN devices_import i ON i.app = u.app AND i.token = u.token
    CROSS JOIN LATERAL unnest(i.topic_ids) AS t(topic_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FILTER (WHERE created),
       count(*) FILTER (WHERE NOT created),
       (SELECT count(*) FROM added)
FROM upserted
"""


def _write_postgresql(conn: Connection, batch: _Batch, now: datetime) -> _BatchResult:
    conn.exec_driver_sql(_PG_STAGE)
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
        copy.set_types(["text", "text", "text", "text", "text", "int4[]"])
        for (app, token), device in batch.items():
            copy.write_row(
                (
                    app,
                    token,
                    device.platform,
                    device.locale,
                    device.timezone,
                    sorted(device.topic_ids),
                )
            )
    imported, updated, added = conn.execute(text(_PG_UPSERT), {"now": now}).one()
    return _BatchResult(imported, updated, len(batch) - imported - updated, added)


def _write_sqlite(conn: Connection, batch: _Batch, now: datetime) -> _BatchResult:
    # The engine begins SQLite transactions IMMEDIATE, so nobody else writes between the look-up
    # of known tokens and the writes below: the classification stays exact.
    tokens = sorted(batch)
    known = _sqlite_known(conn, tokens)
    new = [t for t in tokens if t not in known]
    alive = [t for t in tokens if t in known and known[t][1] == DeviceState.ACTIVE]
    devices = _DEVICES
    if new:
        conn.execute(
            sqlite_insert(devices).on_conflict_do_nothing(),
            [
                {
                    "app": t[0],
                    "token": t[1],
                    "platform": batch[t].platform,
                    "locale": batch[t].locale,
                    "timezone": batch[t].timezone,
                    "state": DeviceState.ACTIVE,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for t in new
            ],
        )
    if alive:
        conn.execute(
            update(devices)
            .where(devices.c.id == bindparam("device_id"))
            .values(
                platform=bindparam("new_platform"),
                locale=func.coalesce(bindparam("new_locale"), devices.c.locale),
                timezone=func.coalesce(bindparam("new_timezone"), devices.c.timezone),
            ),
            [
                {
                    "device_id": known[t][0],
                    "new_platform": batch[t].platform,
                    "new_locale": batch[t].locale,
                    "new_timezone": batch[t].timezone,
                }
                for t in alive
            ],
        )
    ids = {t: known[t][0] for t in alive}
    ids.update({t: device_id for t, (device_id, _) in _sqlite_known(conn, new).items()})
    rows = [
        {"topic_id": topic_id, "device_id": device_id, "created_at": now}
        for t, device_id in ids.items()
        for topic_id in sorted(batch[t].topic_ids)
    ]
    added = 0
    if rows:
        subscriptions = _SUBSCRIPTIONS
        result = conn.execute(
            sqlite_insert(subscriptions)
            .on_conflict_do_nothing()
            .returning(subscriptions.c.topic_id, sort_by_parameter_order=True),
            rows,
        )
        added = len(result.all())
    return _BatchResult(len(new), len(alive), len(tokens) - len(new) - len(alive), added)


def _sqlite_known(
    conn: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(app, token) -> (device id, state) of the known ones among ``keys``."""
    devices = _DEVICES
    wanted = set(keys)
    known: dict[tuple[str, str], tuple[int, str]] = {}
    for start in range(0, len(keys), _SQLITE_IN_CHUNK):
        chunk = [token for _, token in keys[start : start + _SQLITE_IN_CHUNK]]
        query = select(devices.c.app, devices.c.token, devices.c.id, devices.c.state).where(
            devices.c.token.in_(chunk)
        )
        for app, token, device_id, state in conn.execute(query):
            if (app, token) in wanted:
                known[(app, token)] = (device_id, state)
    return known
