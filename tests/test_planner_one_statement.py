"""The planner's one-statement page (PostgreSQL) plans exactly what its portable statements plan.

On PostgreSQL a page is read, filtered and recorded by one data-modifying statement
(notifier/pipeline/page_sql.py); SQLite runs the portable statements. Each case below plans two
identical alerts over the same devices, one each way (on SQLite both the portable way), with
pages of 7 devices so that pages hold several apps, edition filters drop devices, a run of dead
devices spans more pages than one transaction reads, and devices following both topics recur
across the topics' ranges. Both must give the same pages, batches (numbers, apps, id ranges,
sizes), deliveries, cursor and audience, and the audience must be the one computed here in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Alert, Batch, Delivery, Device, TestDevice, utcnow
from notifier.core.vocabulary import DeviceState
from notifier.pipeline import planner
from notifier.pipeline.preferences import language
from notifier.runtime import Runtime
from notifier.subscriptions.service import subscribe

LOCALES = [None, "fr", "fr-CA", "fr_ca", "FR", "en", "en-GB", "de", "frx", "f", "-fr"]
DEVICES = 230
DEAD = range(60, 130)  # 70 dead devices in a row: ten pages of 7, more than MAX_EMPTY_PAGES


def _topics(i: int) -> list[str]:
    return ["world"] if i % 5 == 0 else ["israel", "world"] if i % 2 else ["israel"]


def _app(i: int) -> str:
    return "second" if i % 3 == 0 else "default"


@pytest.fixture
def devices(runtime: Runtime) -> dict[int, tuple[int, str | None, str, list[str], bool]]:
    """Device id -> (index, locale, app, topics, live)."""
    with transaction(runtime.sessions) as session:
        for i in range(DEVICES):
            subscribe(
                session,
                token=f"one-{i:05d}-tokenxx",
                platform="web",
                topics=_topics(i),
                locale=LOCALES[i % len(LOCALES)],
                app=_app(i),
            )
        session.execute(
            update(Device)
            .where(Device.token.in_([f"one-{i:05d}-tokenxx" for i in DEAD]))
            .values(state=DeviceState.DEAD)
        )
    with runtime.sessions() as session:
        rows = session.execute(select(Device.id, Device.token, Device.state)).all()
    found = {}
    for device_id, token, state in rows:
        i = int(token.split("-")[1])
        found[device_id] = (i, LOCALES[i % len(LOCALES)], _app(i), _topics(i), state == "active")
    return found


def _alert(runtime: Runtime, **draft: Any) -> str:
    with transaction(runtime.sessions) as session:
        return create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", **draft),
            default_hold=0,
            default_ttl=3600,
        ).id


def _plan(runtime: Runtime, alert_id: str, one_statement: bool) -> dict[str, Any]:
    """Plan the alert page by page; what each page and the whole planning left behind."""
    steps = []
    while True:
        with runtime.sessions.begin() as session:
            step = planner._plan_page(session, alert_id, utcnow(), one_statement=one_statement)
        if step is None:
            break
        with runtime.sessions() as session:
            seqs = [session.get(Batch, batch_id).seq for batch_id in step[0]]  # type: ignore[union-attr]
        steps.append((seqs, step[1]))
        assert len(steps) < 200
    with runtime.sessions() as session:
        batches = session.execute(
            select(
                Batch.id,
                Batch.seq,
                Batch.app,
                Batch.first_device_id,
                Batch.last_device_id,
                Batch.size,
                Batch.status,
                Batch.attempts,
                Batch.enqueued_at.is_not(None),
            )
            .where(Batch.alert_id == alert_id)
            .order_by(Batch.seq)
        ).all()
        seq_of = {row[0]: row[1] for row in batches}
        deliveries = sorted(
            (device_id, seq_of[batch_id], status, attempts, silent)
            for device_id, batch_id, status, attempts, silent in session.execute(
                select(
                    Delivery.device_id,
                    Delivery.batch_id,
                    Delivery.status,
                    Delivery.attempts,
                    Delivery.silent,
                ).where(Delivery.alert_id == alert_id)
            )
        )
        alert = session.get(Alert, alert_id)
        assert alert is not None
        final = (alert.status, alert.plan_cursor, alert.audience, alert.planned_at is not None)
    return {
        "steps": steps,
        "batches": [row[1:] for row in batches],
        "deliveries": deliveries,
        "alert": final,
    }


def _both_ways(runtime: Runtime, **draft: Any) -> dict[str, Any]:
    """Plan two identical alerts, the portable way and (PostgreSQL) in one statement each page."""
    on_pg = runtime.engine.dialect.name == "postgresql"
    portable = _plan(runtime, _alert(runtime, **draft), one_statement=False)
    one = _plan(runtime, _alert(runtime, **draft), one_statement=on_pg)
    assert one == portable
    return portable


Expectation = Callable[[int, str | None, str, list[str]], bool]


def _check(
    planned: dict[str, Any],
    devices: dict[int, tuple[int, str | None, str, list[str], bool]],
    wanted: Expectation,
) -> None:
    expected = sorted(
        device_id
        for device_id, (i, locale, app, topics, live) in devices.items()
        if live and wanted(i, locale, app, topics)
    )
    assert [d[0] for d in planned["deliveries"]] == expected
    assert all(d[2:] == ("pending", 0, False) for d in planned["deliveries"])
    for seq, app, first, last, size, status, attempts, enqueued in planned["batches"]:
        mine = [d[0] for d in planned["deliveries"] if d[1] == seq]
        assert (first, last, size) == (mine[0], mine[-1], len(mine))
        assert {devices[d][2] for d in mine} == {app}
        assert (status, attempts, enqueued) == ("pending", 0, True)
    assert [b[0] for b in planned["batches"]] == list(range(1, len(planned["batches"]) + 1))
    assert planned["alert"][2] == len(expected)


@pytest.fixture(autouse=True)
def _small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "PAGE_SIZE", 7)


def test_every_follower_of_either_topic_once(runtime: Runtime, devices: dict) -> None:
    planned = _both_ways(runtime, topics=("israel", "world"))
    _check(planned, devices, lambda i, locale, app, topics: True)
    assert ([], 0) in planned["steps"]  # the dead run: pages read, nothing recorded, cursor on
    assert any(len(seqs) == 2 for seqs, _ in planned["steps"])  # pages with both apps
    assert planned["alert"][3]  # planned


def test_an_edition_for_some_apps(runtime: Runtime, devices: dict) -> None:
    planned = _both_ways(runtime, topics=("israel",), locales=("fr-FR",), apps=("second",))
    _check(
        planned,
        devices,
        lambda i, locale, app, topics: (
            "israel" in topics
            and app == "second"
            and locale is not None
            and language(locale, "en") == "fr"
            and locale.replace("_", "-").lower().split("-")[0] == "fr"
        ),
    )


def test_an_edition_of_the_default_language_takes_devices_without_a_locale(
    runtime: Runtime, devices: dict
) -> None:
    planned = _both_ways(runtime, topics=("world",), locales=("EN", "de-AT"), apps=("default",))
    _check(
        planned,
        devices,
        lambda i, locale, app, topics: (
            "world" in topics and app == "default" and language(locale, "en") in {"en", "de"}
        ),
    )
    assert any(devices[d[0]][1] is None for d in planned["deliveries"])


def test_a_test_send_goes_to_the_editors_live_test_devices_only(
    runtime: Runtime, devices: dict
) -> None:
    with transaction(runtime.sessions) as session:
        _, key = create_key(session, "editor", "tests")
        session.flush()
        key_id = key.id
        chosen = [d for d, (i, *_) in devices.items() if i % 4 == 1 or i in (61, 62)]
        session.execute(
            insert(TestDevice), [{"api_key_id": key_id, "device_id": d} for d in chosen]
        )
    # Locales and apps do not apply to a test send.
    planned = _both_ways(
        runtime,
        topics=("israel",),
        test_only=True,
        created_by=str(key_id),
        locales=("de",),
        apps=("second",),
    )
    _check(planned, devices, lambda i, locale, app, topics: i % 4 == 1)
    nobody = _both_ways(runtime, topics=("israel",), test_only=True, created_by="not-a-key")
    assert nobody["deliveries"] == [] and nobody["steps"] == [] and nobody["alert"][3]


def test_an_alert_whose_topics_nobody_follows_is_planned_empty(
    runtime: Runtime, devices: dict
) -> None:
    planned = _both_ways(runtime, topics=("no-such-topic",))
    assert planned["deliveries"] == [] and planned["batches"] == [] and planned["alert"][3]


def test_three_topics_one_of_them_unknown(runtime: Runtime, devices: dict) -> None:
    planned = _both_ways(runtime, topics=("world", "no-such-topic", "israel"), apps=("second",))
    _check(planned, devices, lambda i, locale, app, topics: app == "second")
