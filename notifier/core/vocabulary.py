"""The words notifier stores and passes around, each named once: states, trigger kinds, platforms.

Every value is the exact string already stored in the database and shown in the API, so these
``StrEnum``s compare equal to the rows written before they existed (no migration), serialise to
JSON as plain strings, and a typo becomes an ``AttributeError`` at import instead of a status
nobody ever matches. Columns holding them use :class:`notifier.core.models.EnumText`, which turns
the stored strings back into members and refuses unknown values on write.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class AlertStatus(StrEnum):
    """Where an alert is in its life; the API's ``status`` and the ``alerts.status`` column."""

    SCHEDULED = "scheduled"  # in its hold window, or due and not yet picked up by the planner
    SENDING = "sending"  # the planner started: batches are being recorded and sent
    SENT = "sent"  # nothing pending, and at least one device accepted it (or none failed)
    CANCELLED = "cancelled"  # an editor or an unpublished article stopped it
    EXPIRED = "expired"  # its TTL ran out before every device was reached
    FAILED = "failed"  # nothing pending, and every device failed


# An alert in these states can still send, so it can be cancelled, expired and re-queued.
LIVE_ALERT_STATUSES: Final = (AlertStatus.SCHEDULED, AlertStatus.SENDING)


class BatchStatus(StrEnum):
    """A batch's progress (``batches.status``); only a lease owner moves it out of ``sending``."""

    PENDING = "pending"  # recorded by the planner, its message published, not leased yet
    SENDING = "sending"  # leased by a worker until ``lease_expires_at``
    RETRY_WAIT = "retry_wait"  # some devices wait for another attempt at ``next_attempt_at``
    DONE = "done"  # every device of the batch is settled
    CANCELLED = "cancelled"  # its alert stopped before it was sent


# Batches owed a run that no worker holds: a cancel or an expiry settles their devices.
WAITING_BATCH_STATUSES: Final = (BatchStatus.PENDING, BatchStatus.RETRY_WAIT)
# Batches that never run again, whatever message arrives for them.
FINISHED_BATCH_STATUSES: Final = (BatchStatus.DONE, BatchStatus.CANCELLED)


class DeliveryStatus(StrEnum):
    """One device's outcome for one alert (``deliveries.status``).

    Every settled status is also the name of the alert counter it adds to (``Alert.sent``,
    ``.failed``, ``.pruned``, ``.cancelled``), so moving devices needs no table from one to the
    other: see :func:`notifier.alerts.service.count_settled`.
    """

    PENDING = "pending"
    SENT = "sent"  # accepted by FCM
    FAILED = "failed"  # with a reason in ``error_code``
    PRUNED = "pruned"  # the token is dead; the device was marked dead too
    CANCELLED = "cancelled"  # the alert stopped before this device was sent
    # The reader's own preferences kept it from the device (quiet hours in ``skip`` mode, or
    # the daily cap), with the :class:`SuppressReason` in ``error_code``.
    SUPPRESSED = "suppressed"


# The terminal statuses: what "nothing lost" requires of every device in an audience.
SETTLED_DELIVERY_STATUSES: Final = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.PRUNED,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.SUPPRESSED,
)


class SuppressReason(StrEnum):
    """Why a ``suppressed`` device was not sent (its ``deliveries.error_code``)."""

    QUIET_HOURS = "quiet_hours"  # inside the reader's quiet hours, with mode ``skip``
    DAILY_CAP = "daily_cap"  # the reader's ``max_per_day`` was reached in the last 24 hours


class QuietMode(StrEnum):
    """What quiet hours do to a normal alert."""

    SILENT = "silent"  # delivered without sound or heads-up (low priority, passive, silent)
    SKIP = "skip"  # not sent at all: ``suppressed`` with reason ``quiet_hours``


class Urgency(StrEnum):
    """An alert's urgency: ``urgent`` comes through quiet hours and past the daily cap."""

    NORMAL = "normal"
    URGENT = "urgent"


class DeviceState(StrEnum):
    """Whether a device is still sent to (``devices.state``)."""

    ACTIVE = "active"
    DEAD = "dead"  # FCM said its token is gone (``dead_reason``); subscribing again revives it


class ReachState(StrEnum):
    """What a reader's app is told about its device (lookup's ``state``); no internals leak."""

    ACTIVE = "active"
    UNREACHABLE = "unreachable"  # FCM said the token is gone: the app should register again


class TriggerKind(StrEnum):
    """What an outbox row asks the workers to do; :mod:`notifier.pipeline.routing` routes each."""

    PLAN = "plan"  # ref: an alert id; page its audience into batches
    SEND = "send"  # ref: a batch id; send the batch


class Platform(StrEnum):
    """A device's platform, which decides the FCM message's platform block."""

    ANDROID = "android"
    IOS = "ios"
    WEB = "web"
