"""Counting a reader's click on a notification: one more open for the alert, nothing about who.

Opens are counted per alert only. The click arrives without the device token on purpose (tokens
never travel in URLs), so an open cannot be tied to a reader, and the counter is bumped in SQL
(``opens = opens + 1``) so concurrent clicks on a big alert never lose one to a read-modify-write.

Where the reader lands: the URL its notification carried. A device sent a translation got that
translation's ``url`` (the send's best match for its locale, ``fr-CA`` -> ``fr`` -> the alert's
own), so the click names the URL it received (``received``) and lands there when it is one of
the alert's own URLs. Naming the URL rather than the locale keeps the landing exactly what was
sent even when the reader changed language since, and the check against the stored URLs means
this can never redirect anywhere the newsroom did not put in the alert.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from notifier.core.models import Alert


def record_open(session: Session, alert_id: str, received: str | None = None) -> str | None:
    """Count an open of ``alert_id`` and return the article URL to send the reader to.

    ``None`` when there is no such alert. ``received`` is the URL the device's notification
    carried (a translation's); any other value lands on the alert's own URL. URLs are validated
    when alerts are made; the scheme checks here only make sure this endpoint can never redirect
    anywhere but to a web page.
    """
    row = session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .where(or_(Alert.url.like("https://%"), Alert.url.like("http://%")))
        .values(opens=Alert.opens + 1)
        .returning(Alert.url, Alert.translations)
    ).one_or_none()
    if row is None:
        return None
    return landing_url(row.url, row.translations or {}, received)


def landing_url(
    own_url: str, translations: Mapping[str, Mapping[str, str]], received: str | None
) -> str:
    """``received`` when it is the alert's URL or one of its translations', else ``own_url``."""
    if received is None or received == own_url:
        return own_url
    allowed = {text.get("url") for text in translations.values()}
    if received in allowed and received.startswith(("https://", "http://")):
        return received
    return own_url


def open_rate(opens: int, sent: int) -> float | None:
    """Opens per notification FCM accepted; ``None`` before anything was sent.

    It can exceed 1 (a notification reopened from the system's history, an open link shared),
    and reporting the raw ratio is more honest than clamping it.
    """
    return round(opens / sent, 4) if sent else None
