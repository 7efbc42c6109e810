"""Plain values exchanged between the pipeline and the FCM sender (no Firebase, no database).

The sender takes a :class:`PushAlert` and a batch of :class:`Target` devices and returns one typed
outcome per device; the caller records them. Keeping these types free of firebase_admin lets the
pipeline, the tests and the emulator share them without importing the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

from notifier.core.vocabulary import Platform as Platform  # a target's platform, named there


@dataclass(frozen=True, slots=True)
class PushAlert:
    """What every device of an alert is told. ``expires_at`` is timezone-aware UTC."""

    alert_id: str
    headline: str
    url: str
    expires_at: datetime
    ttl_seconds: int
    body: str | None = None
    image_url: str | None = None
    topics: tuple[str, ...] = ()
    analytics_label: str | None = None
    # Where a click on a web notification should go when it is to be counted as an open
    # (``{public_url}/o/{alert_id}``, which redirects to ``url``); None sends readers straight on.
    open_url: str | None = None


@dataclass(frozen=True, slots=True)
class Localized:
    """The words one device gets instead of the alert's own (a translation, ``locale`` its tag)."""

    locale: str
    headline: str
    body: str | None
    url: str


class Target(NamedTuple):
    """One device to send to. The token is a bearer secret: never log it.

    ``text`` replaces the alert's headline, body and URL for this device (its language);
    ``silent`` delivers without sound or heads-up (the reader's quiet hours). A named tuple,
    not a frozen dataclass: a batch makes one per device, and a tuple is built at C speed.
    """

    device_id: int
    token: str
    platform: Platform
    text: Localized | None = None
    silent: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    """FCM accepted the message; ``message_name`` is ``projects/.../messages/...``."""

    device_id: int
    message_name: str
    kind: Literal["accepted"] = field(default="accepted", init=False)


@dataclass(frozen=True, slots=True)
class Prune:
    """The token is dead for good (UNREGISTERED, SENDER_ID_MISMATCH, invalid token)."""

    device_id: int
    reason: str
    kind: Literal["prune"] = field(default="prune", init=False)


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure; try again no sooner than ``retry_after`` seconds (when given)."""

    device_id: int
    reason: str
    retry_after: float | None = None
    kind: Literal["retry"] = field(default="retry", init=False)


@dataclass(frozen=True, slots=True)
class Fatal:
    """A failure that retrying cannot fix (auth to APNs/web push, payload errors, expired)."""

    device_id: int
    reason: str
    kind: Literal["fatal"] = field(default="fatal", init=False)


Outcome = Accepted | Prune | Retry | Fatal
