"""Giving back the daily-cap places of devices an alert will now never reach.

A capped device's place (its ``device_sends`` row for the alert) is taken when its batch is
leased and decided, before FCM is called, so that two alerts fanning out at once cannot both
take a reader's last place. A batch that FCM asked to retry keeps its devices' places while it
waits. When its alert is then cancelled or expires, those devices are settled without ever being
sent, and their places must go back, as the recording already does for devices that end failed
(``notifier.pipeline.record.release_cap``); otherwise a cancelled alert would silence a reader
for the rest of the day.

One DELETE per call, whatever the number of batches or devices: the batches' still-pending
deliveries (by the ``batch_id`` index, at most 500 per batch) select the rows, found by the
``device_sends`` primary key (device, alert).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from notifier.core.models import Batch, Delivery, DeviceSend
from notifier.core.vocabulary import BatchStatus, DeliveryStatus


def release_unsent_places(
    session: Session, alert_id: str, batch_ids: Select[int] | Sequence[int]
) -> int:
    """Give back the places the still-pending devices of ``batch_ids`` hold for ``alert_id``.

    Call it before those deliveries leave ``pending``. Returns the places given back.
    """
    unsent = select(Delivery.device_id).where(
        Delivery.batch_id.in_(batch_ids), Delivery.status == DeliveryStatus.PENDING
    )
    result = session.execute(
        delete(DeviceSend)
        .where(DeviceSend.alert_id == alert_id, DeviceSend.device_id.in_(unsent))
        .execution_options(synchronize_session=False)
    )
    released: int = result.rowcount  # type: ignore[attr-defined]
    return released


def retry_waiting_batches(alert_id: str) -> Select[int]:
    """The alert's batches waiting for a retry: the only settled-while-waiting batches whose
    devices can hold places (a batch never leased has decided nothing yet)."""
    return select(Batch.id).where(
        Batch.alert_id == alert_id, Batch.status == BatchStatus.RETRY_WAIT
    )
