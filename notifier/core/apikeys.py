"""API keys for editors, ops and admins: shown once, stored as a hash, revocable.

Keys are 192-bit random secrets, so a plain SHA-256 is enough to store them (a slow password hash
protects low-entropy secrets; it would only add latency here). The visible prefix identifies a
key in listings and logs without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.core.models import ApiKey, utcnow

ROLES = ("editor", "ops", "admin")
KEY_PREFIX = "ntf_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id (as a string, used as ``created_by``), role and name."""

    key_id: int
    role: str
    name: str | None
    prefix: str

    def has_role(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: str, name: str | None = None) -> tuple[str, ApiKey]:
    """Return the plaintext key (to show once) and its stored row."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(prefix=prefix, key_hash=_hash(key), role=role, name=name)
    session.add(row)
    session.flush()
    return key, row


def authenticate(session: Session, presented: str, now: datetime | None = None) -> Principal | None:
    """The principal for a presented key, or None if unknown, wrong or revoked."""
    if not presented.startswith(KEY_PREFIX) or presented.count("_") < 2:
        return None
    prefix = presented[len(KEY_PREFIX) :].split("_", 1)[0]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(presented)):
        return None
    now = now or utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now  # at most one write a minute per key
    return Principal(key_id=row.id, role=row.role, name=row.name, prefix=row.prefix)


def revoke_key(session: Session, prefix: str) -> bool:
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        return False
    row.revoked_at = row.revoked_at or utcnow()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
