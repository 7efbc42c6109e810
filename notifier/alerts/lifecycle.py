"""Ending an alert: finished when nothing is pending, expired when its TTL ran out first.

Shared by the planner, the batch sender and the sweeper so that every path that can be the last
to touch an alert applies the same rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from notifier.alerts.service import pending_count, settle_pending
from notifier.core.models import Alert
from notifier.core.vocabulary import LIVE_ALERT_STATUSES, AlertStatus, DeliveryStatus


def finish_if_complete(session: Session, alert: Alert, now: datetime) -> bool:
    """Mark a fully planned alert with nothing pending as sent (or failed if nothing went out)."""
    if (
        alert.status not in LIVE_ALERT_STATUSES
        or alert.planned_at is None
        or pending_count(alert) > 0
    ):
        return False
    delivered_nothing = alert.sent == 0 and alert.failed > 0
    alert.status = AlertStatus.FAILED if delivered_nothing else AlertStatus.SENT
    if delivered_nothing and not alert.status_reason:
        alert.status_reason = "no device accepted the alert"
    alert.finished_at = now
    return True


def expire_alert(session: Session, alert: Alert, now: datetime) -> int:
    """Stop an alert past its TTL: pending devices fail with reason ``expired``.

    Devices of a batch in flight are left to it; it records what FCM answered, and the batch
    sender fails anything it would retry past the TTL. Returns the devices failed here.
    """
    failed = settle_pending(session, alert, DeliveryStatus.FAILED, "expired", now)
    alert.planned_at = alert.planned_at or now  # what was never planned is not in the audience
    alert.status, alert.finished_at = AlertStatus.EXPIRED, now
    alert.status_reason = "TTL reached before every device was reached"
    return failed
