"""Structured (JSON) logs carrying request, alert and batch ids; never tokens or secrets."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

# Ids that every log line written while handling one request/task should carry.
log_context: ContextVar[dict[str, str] | None] = ContextVar("log_context", default=None)


def bind(**ids: str) -> None:
    """Attach ids (request_id, alert_id, batch_id...) to subsequent log lines of this context."""
    current = dict(log_context.get() or {})
    current.update(ids)
    log_context.set(current)


def clear() -> None:
    log_context.set(None)


def token_ref(token: str) -> str:
    """A short, stable, non-reversible reference to a device token, safe for logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(log_context.get() or {})
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # werkzeug's access log prints full URLs; ours is written by the app with ids only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
