"""Each vocabulary is named once, stores the strings already in the database, and is enforced.

States and kinds live in :mod:`notifier.core.vocabulary`; these tests pin what other parts of the
system rely on: the stored strings (rows written before the enums existed must still read), the
values the OpenAPI description promises, the columns refusing a value outside the enum, and the
alert counters being named after the delivery statuses they count.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

import pytest
import yaml
from sqlalchemy import Integer, insert, select, text
from sqlalchemy.exc import StatementError

from notifier.alerts.service import (
    AlertDraft,
    cancel_alert,
    count_settled,
    create_alert,
    pending_count,
)
from notifier.core.db import transaction
from notifier.core.models import Alert, Batch, Delivery, Device, Outbox, utcnow
from notifier.core.vocabulary import (
    LIVE_ALERT_STATUSES,
    SETTLED_DELIVERY_STATUSES,
    AlertStatus,
    BatchStatus,
    DeliveryStatus,
    DeviceState,
    Platform,
    TriggerKind,
)
from notifier.http import openapi
from notifier.runtime import Runtime
from notifier.subscriptions.service import subscribe


@pytest.fixture(scope="module")
def spec_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = yaml.safe_load(openapi.spec_bytes())["components"]["schemas"]
    return schemas


# Rows already in production databases hold exactly these strings: renaming a member's value
# needs a data migration, so a change here must be deliberate.
STORED = [
    (AlertStatus, ["scheduled", "sending", "sent", "cancelled", "expired", "failed"]),
    (BatchStatus, ["pending", "sending", "retry_wait", "done", "cancelled"]),
    (DeliveryStatus, ["pending", "sent", "failed", "pruned", "cancelled", "suppressed"]),
    (DeviceState, ["active", "dead"]),
    (TriggerKind, ["plan", "send"]),
    (Platform, ["android", "ios", "web"]),
]


@pytest.mark.parametrize(("enum", "values"), STORED, ids=[e.__name__ for e, _ in STORED])
def test_each_vocabulary_keeps_the_strings_already_stored(
    enum: type[StrEnum], values: list[str]
) -> None:
    assert [member.value for member in enum] == values
    assert all(enum(value) == value for value in values)  # rows read back compare equal


@pytest.mark.parametrize(("enum", "schema"), [(AlertStatus, "AlertStatus"), (Platform, "Platform")])
def test_the_openapi_description_lists_the_same_values(
    spec_schemas: dict[str, Any], enum: type[StrEnum], schema: str
) -> None:
    assert spec_schemas[schema]["enum"] == [member.value for member in enum]


def test_only_scheduled_and_sending_alerts_are_live() -> None:
    assert set(LIVE_ALERT_STATUSES) == {AlertStatus.SCHEDULED, AlertStatus.SENDING}


def test_every_settled_delivery_status_names_an_alert_counter() -> None:
    columns = Alert.__table__.columns
    for status in SETTLED_DELIVERY_STATUSES:
        assert isinstance(columns[status.value].type, Integer), status
    assert DeliveryStatus.PENDING not in SETTLED_DELIVERY_STATUSES


def test_counting_a_settled_status_moves_only_its_own_counter() -> None:
    alert = Alert(audience=10, sent=0, failed=0, pruned=0, cancelled=0, suppressed=0)
    count_settled(alert, DeliveryStatus.PRUNED, 3)
    count_settled(alert, DeliveryStatus.CANCELLED, 2)
    assert (alert.sent, alert.failed, alert.pruned, alert.cancelled) == (0, 0, 3, 2)
    assert pending_count(alert) == 5


def test_pending_is_not_a_counter_to_add_to() -> None:
    alert = Alert(audience=1, sent=0, failed=0, pruned=0, cancelled=0)
    with pytest.raises(ValueError, match="pending"):
        count_settled(alert, DeliveryStatus.PENDING, 1)


def test_states_read_back_as_enum_members(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        subscribe(session, token="vocab-device-0001", platform="ios", topics=["israel"])
        create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", topics=("israel",)),
            default_hold=60,
            default_ttl=3600,
        )
    with runtime.sessions() as session:
        device = session.scalars(select(Device)).one()
        alert = session.scalars(select(Alert)).one()
        trigger = session.scalars(select(Outbox)).one()
    assert device.platform is Platform.IOS
    assert device.state is DeviceState.ACTIVE
    assert alert.status is AlertStatus.SCHEDULED
    assert trigger.kind is TriggerKind.PLAN


def test_rows_written_as_plain_strings_read_as_members(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        subscribe(session, token="vocab-device-0002", platform="web", topics=["israel"])
        session.execute(text("UPDATE devices SET state = 'dead'"))
    with runtime.sessions() as session:
        state = session.scalar(select(Device.state))
    assert state is DeviceState.DEAD


def test_a_value_outside_the_vocabulary_is_refused_before_it_is_stored(runtime: Runtime) -> None:
    with (
        pytest.raises(StatementError, match="not a valid TriggerKind"),
        transaction(runtime.sessions) as session,
    ):
        session.execute(insert(Outbox).values(kind="plna", ref="x", due_at=utcnow()))
    with runtime.sessions() as session:
        assert session.scalar(select(Outbox.id)) is None


def test_cancelling_counts_the_settled_devices_once(runtime: Runtime) -> None:
    """The cancel path settles pending deliveries and moves ``cancelled`` by exactly as many."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        alert = create_alert(
            session,
            AlertDraft(headline="h", url="https://n.example/a", topics=("israel",)),
            default_hold=0,
            default_ttl=3600,
            now=now,
        )
        alert.status, alert.audience = AlertStatus.SENDING, 3
        session.flush()
        batch = Batch(alert_id=alert.id, seq=1, first_device_id=1, last_device_id=3, size=3)
        session.add(batch)
        session.flush()
        session.execute(
            insert(Delivery),
            [
                {"alert_id": alert.id, "device_id": i, "batch_id": batch.id, "status": status}
                for i, status in [(1, "sent"), (2, "pending"), (3, "pending")]
            ],
        )
        alert.sent = 1
        alert_id = alert.id
    with transaction(runtime.sessions) as session:
        cancel_alert(session, alert_id, now=now + timedelta(seconds=1))
    with runtime.sessions() as session:
        alert = session.get(Alert, alert_id)
        statuses = sorted(session.scalars(select(Delivery.status)))
        batch_status = session.scalar(select(Batch.status))
    assert alert is not None
    assert (alert.status, alert.sent, alert.cancelled, pending_count(alert)) == (
        AlertStatus.CANCELLED,
        1,
        2,
        0,
    )
    assert statuses == ["cancelled", "cancelled", "sent"]
    assert batch_status is BatchStatus.CANCELLED
