"""Editors' own test devices: where ``POST /v1/alerts/{id}/test`` sends before the real thing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from notifier.alerts.service import AlertDraft, create_alert, get_alert
from notifier.core.db import insert_ignoring_conflicts
from notifier.core.models import Alert, Device, TestDevice
from notifier.core.vocabulary import Platform
from notifier.subscriptions.service import find_device

MAX_TEST_DEVICES = 20


class TooManyTestDevices(ValueError):
    pass


def add_test_device(session: Session, key_id: int, *, token: str, platform: Platform) -> bool:
    """Register a device for the key's test sends; True when newly added."""
    device = find_device(session, token)
    if device is None:
        device = Device(token=token, platform=platform)
        session.add(device)
        session.flush()
    owned = list_test_devices(session, key_id)
    if any(d.id == device.id for d in owned):
        return False
    if len(owned) >= MAX_TEST_DEVICES:
        raise TooManyTestDevices(f"at most {MAX_TEST_DEVICES} test devices per key")
    insert_ignoring_conflicts(
        session, TestDevice.__table__, [{"api_key_id": key_id, "device_id": device.id}]
    )
    return True


def remove_test_device(session: Session, key_id: int, *, token: str) -> None:
    device = find_device(session, token)
    if device is not None:
        session.execute(
            delete(TestDevice).where(
                TestDevice.api_key_id == key_id, TestDevice.device_id == device.id
            )
        )


def list_test_devices(session: Session, key_id: int) -> list[Device]:
    return list(
        session.scalars(
            select(Device)
            .join(TestDevice, TestDevice.device_id == Device.id)
            .where(TestDevice.api_key_id == key_id)
            .order_by(Device.id)
        )
    )


def create_test_send(
    session: Session, alert_id: str, key_id: int, *, ttl: int, now: datetime | None = None
) -> Alert:
    """A copy of the alert that goes, at once, only to the key's test devices."""
    original = get_alert(session, alert_id)
    draft = AlertDraft(
        headline=original.headline,
        body=original.body,
        url=original.url,
        image_url=original.image_url,
        topics=tuple(original.topics),
        hold_seconds=0,
        ttl_seconds=ttl,
        priority=original.priority,
        source="test",
        created_by=str(key_id),
        test_only=True,
    )
    return create_alert(session, draft, default_hold=0, default_ttl=ttl, now=now)
