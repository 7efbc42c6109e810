"""Counting a reader's click on a notification: one more open for the alert, nothing about who.

Opens are counted per alert only. The click arrives without the device token on purpose (tokens
never travel in URLs), so an open cannot be tied to a reader, and the counter is bumped in SQL
(``opens = opens + 1``) so concurrent clicks on a big alert never lose one to a read-modify-write.
"""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from notifier.core.models import Alert


def record_open(session: Session, alert_id: str) -> str | None:
    """Count an open of ``alert_id`` and return the article URL to send the reader to.

    ``None`` when there is no such alert. URLs are validated when alerts are made; the scheme
    check here only makes sure this endpoint can never redirect anywhere but to a web page.
    """
    return session.scalar(
        update(Alert)
        .where(Alert.id == alert_id)
        .where(or_(Alert.url.like("https://%"), Alert.url.like("http://%")))
        .values(opens=Alert.opens + 1)
        .returning(Alert.url)
    )


def open_rate(opens: int, sent: int) -> float | None:
    """Opens per notification FCM accepted; ``None`` before anything was sent.

    It can exceed 1 (a notification reopened from the system's history, an open link shared),
    and reporting the raw ratio is more honest than clamping it.
    """
    return round(opens / sent, 4) if sent else None
