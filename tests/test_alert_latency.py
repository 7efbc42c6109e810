"""Per-alert delivery percentiles: the maths on both backends, over rows with known times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from flask.testing import FlaskClient

from notifier.alerts import latency
from notifier.alerts.latency import Latency, alert_latencies, alert_latency, rank
from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.apikeys import create_key
from notifier.core.db import transaction
from notifier.core.models import Alert, Delivery
from notifier.core.vocabulary import AlertStatus, DeliveryStatus
from notifier.http import openapi
from notifier.runtime import Runtime
from tests.test_openapi import assert_documented

DUE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SPEC = yaml.safe_load(openapi.spec_bytes())


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Each backend's database reuses nothing, but alert ids are random: this only keeps one
    # test's cached results from hiding a bug in the next one.
    latency.clear_cache()
    yield
    latency.clear_cache()


def alert_with_deliveries(
    runtime: Runtime,
    sent_after: list[float],
    *,
    others: list[tuple[DeliveryStatus, float]] = (),  # type: ignore[assignment]
    hold_seconds: int = 30,
) -> str:
    """An alert due at DUE whose devices FCM accepted ``sent_after`` seconds after it was due,
    plus deliveries in other states (never counted), with ``updated_at`` set as recorded."""
    created = DUE - timedelta(seconds=hold_seconds)
    with transaction(runtime.sessions) as session:
        alert = create_alert(
            session,
            AlertDraft(headline="Sirens", url="https://news.example/a", topics=("israel",)),
            default_hold=hold_seconds,
            default_ttl=3600,
            now=created,
        )
        rows = [(DeliveryStatus.SENT, s) for s in sent_after] + list(others)
        for device_id, (status, seconds) in enumerate(rows, start=1):
            session.add(
                Delivery(
                    alert_id=alert.id,
                    device_id=device_id,
                    batch_id=1,
                    status=status,
                    updated_at=DUE + timedelta(seconds=seconds),
                )
            )
        alert.status = AlertStatus.SENT
        alert.audience, alert.sent = len(rows), len(sent_after)
        return alert.id


def latency_of(runtime: Runtime, alert_id: str) -> Latency:
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert_latency(session, alert)


def test_nearest_rank_matches_percentile_disc() -> None:
    assert [rank(f, 10) for f in (0.5, 0.9, 0.99)] == [5, 9, 10]
    assert [rank(f, 1) for f in (0.5, 0.9, 0.99)] == [1, 1, 1]
    assert [rank(f, 1000) for f in (0.5, 0.9, 0.99)] == [500, 900, 990]
    assert [rank(f, 101) for f in (0.5, 0.9, 0.99)] == [51, 91, 100]


def test_percentiles_and_share_within_two_minutes_count_only_accepted_devices(
    runtime: Runtime,
) -> None:
    # Inserted out of order: the figures come from the times, not the insertion order.
    sent = [9.0, 1.0, 200.0, 3.0, 2.0, 8.0, 4.0, 7.0, 6.0, 5.25]
    alert_id = alert_with_deliveries(
        runtime,
        sent,
        # Failed, pruned and pending devices were never delivered: they must not move a figure.
        others=[
            (DeliveryStatus.FAILED, 0.5),
            (DeliveryStatus.PRUNED, 0.1),
            (DeliveryStatus.PENDING, 900.0),
        ],
    )
    found = latency_of(runtime, alert_id)
    assert found == Latency(accepted=10, p50_s=5.25, p90_s=9.0, p99_s=200.0, within_120s=0.9)
    assert found.as_json() == {"p50_s": 5.25, "p90_s": 9.0, "p99_s": 200.0, "within_120s": 0.9}


def test_a_device_accepted_exactly_at_two_minutes_counts_as_within(runtime: Runtime) -> None:
    alert_id = alert_with_deliveries(runtime, [120.0, 120.001])
    assert latency_of(runtime, alert_id).within_120s == 0.5


def test_sub_second_times_keep_millisecond_precision(runtime: Runtime) -> None:
    alert_id = alert_with_deliveries(runtime, [0.123, 0.456])
    found = latency_of(runtime, alert_id)
    assert (found.p50_s, found.p90_s, found.p99_s) == (0.123, 0.456, 0.456)


def test_nothing_accepted_gives_null_figures(runtime: Runtime) -> None:
    alert_id = alert_with_deliveries(runtime, [], others=[(DeliveryStatus.FAILED, 1.0)])
    assert latency_of(runtime, alert_id).as_json() == {
        "p50_s": None,
        "p90_s": None,
        "p99_s": None,
        "within_120s": None,
    }


def test_several_alerts_at_once_each_get_their_own_figures(runtime: Runtime) -> None:
    fast = alert_with_deliveries(runtime, [1.0, 2.0, 3.0])
    slow = alert_with_deliveries(runtime, [130.0, 140.0])
    idle = alert_with_deliveries(runtime, [])
    with transaction(runtime.sessions) as session:
        alerts = [session.get(Alert, i) for i in (fast, slow, idle)]
        found = alert_latencies(session, [a for a in alerts if a is not None])
    assert found[fast] == Latency(3, 2.0, 3.0, 3.0, 1.0)
    assert found[slow] == Latency(2, 130.0, 140.0, 140.0, 0.0)
    assert found[idle] == Latency(0)


def test_a_further_accepted_device_refreshes_the_cached_figures(runtime: Runtime) -> None:
    alert_id = alert_with_deliveries(runtime, [1.0, 2.0])
    assert latency_of(runtime, alert_id).p99_s == 2.0
    with transaction(runtime.sessions) as session:
        session.add(
            Delivery(
                alert_id=alert_id,
                device_id=99,
                batch_id=2,
                status=DeliveryStatus.SENT,
                updated_at=DUE + timedelta(seconds=300),
            )
        )
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.sent += 1  # as the recorder does, in the same transaction as the row
    assert latency_of(runtime, alert_id) == Latency(3, 2.0, 300.0, 300.0, round(2 / 3, 4))


# --- the API and the ops view -------------------------------------------------------------------


def bearer(runtime: Runtime, role: str) -> dict[str, str]:
    with transaction(runtime.sessions) as session:
        key, _ = create_key(session, role, "latency test")
    return {"Authorization": f"Bearer {key}"}


def test_get_alert_reports_its_latency(client: FlaskClient, runtime: Runtime) -> None:
    alert_id = alert_with_deliveries(runtime, [0.5, 1.5, 130.0, 2.5])
    response = client.get(f"/v1/alerts/{alert_id}", headers=bearer(runtime, "ops"))
    assert_documented(SPEC, "/v1/alerts/{alert_id}", "GET", response)
    assert response.json["latency"] == {
        "p50_s": 1.5,
        "p90_s": 130.0,
        "p99_s": 130.0,
        "within_120s": 0.75,
    }


def test_listed_alerts_carry_their_latency_and_null_before_any_accept(
    client: FlaskClient, runtime: Runtime
) -> None:
    delivered = alert_with_deliveries(runtime, [3.0])
    waiting = alert_with_deliveries(runtime, [], others=[(DeliveryStatus.PENDING, 0.0)])
    response = client.get("/v1/alerts", headers=bearer(runtime, "editor"))
    assert_documented(SPEC, "/v1/alerts", "GET", response)
    by_id = {a["id"]: a["latency"] for a in response.json["alerts"]}
    assert by_id[delivered] == {"p50_s": 3.0, "p90_s": 3.0, "p99_s": 3.0, "within_120s": 1.0}
    assert by_id[waiting] == {"p50_s": None, "p90_s": None, "p99_s": None, "within_120s": None}


def test_ops_recent_alerts_show_each_finished_alerts_latency(
    client: FlaskClient, runtime: Runtime
) -> None:
    alert_id = alert_with_deliveries(runtime, [10.0, 20.0])
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.finished_at = DUE + timedelta(seconds=20)
    response = client.get("/v1/ops/queues", headers=bearer(runtime, "ops"))
    assert_documented(SPEC, "/v1/ops/queues", "GET", response)
    (recent,) = response.json["recent_alerts"]
    assert recent["latency"] == {"p50_s": 10.0, "p90_s": 20.0, "p99_s": 20.0, "within_120s": 1.0}


def add_sent(runtime: Runtime, alert_id: str, device_id: int, seconds: float) -> None:
    """One more device accepted, recorded as the batch recorder does (row and counter)."""
    with transaction(runtime.sessions) as session:
        session.add(
            Delivery(
                alert_id=alert_id,
                device_id=device_id,
                batch_id=2,
                status=DeliveryStatus.SENT,
                updated_at=DUE + timedelta(seconds=seconds),
            )
        )
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.sent += 1


def listed_latency(runtime: Runtime, alert_id: str, live_max_age: float) -> Latency:
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert_latencies(session, [alert], live_max_age=live_max_age)[alert_id]


def test_a_polled_list_may_reuse_a_sending_alerts_recent_figures_but_never_a_finished_ones(
    runtime: Runtime,
) -> None:
    alert_id = alert_with_deliveries(runtime, [1.0, 2.0])
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.status = AlertStatus.SENDING
    before = Latency(2, 1.0, 2.0, 2.0, 1.0)
    assert listed_latency(runtime, alert_id, live_max_age=3600) == before
    add_sent(runtime, alert_id, 50, 300.0)

    # Still sending: a list polled every few seconds reuses the figures it just computed...
    assert listed_latency(runtime, alert_id, live_max_age=3600) == before
    # ...while the alert's own GET (no max age) is exact.
    after = Latency(3, 2.0, 300.0, 300.0, round(2 / 3, 4))
    assert latency_of(runtime, alert_id) == after

    add_sent(runtime, alert_id, 51, 400.0)
    with transaction(runtime.sessions) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.status, alert.finished_at = AlertStatus.SENT, DUE + timedelta(seconds=400)
    # Finished: exact in every view, however recent the cached figures are.
    assert listed_latency(runtime, alert_id, live_max_age=3600) == Latency(
        4, 2.0, 400.0, 400.0, 0.5
    )
