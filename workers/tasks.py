"""Celery tasks: thin adapters that load ids, call a service, and publish what comes next.

Each worker process builds its runtime, FCM sender and rate limiter once, on first use after the
fork, so connections and the sender's event loop are never shared across processes.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery.signals import worker_process_init, worker_process_shutdown, worker_ready
from sqlalchemy.exc import OperationalError

from notifier.core.logs import bind, clear
from notifier.core.outbox import MAX_COUNTDOWN
from notifier.core.vocabulary import TriggerKind
from notifier.pipeline import planner, sweeper
from notifier.pipeline import send as delivery
from notifier.pipeline.quota import (
    MAX_IN_TASK_WAIT_SECONDS,
    LocalTokenBucket,
    PerAppLimiters,
    RedisTokenBucket,
    SendLimiter,
    quota_key,
)
from notifier.pipeline.routing import TaskName
from notifier.runtime import Runtime
from workers.celery_app import app
from workers.publish import CeleryPublisher

if TYPE_CHECKING:
    from notifier.core.settings import Settings
    from notifier.fcm.sender import ServiceAccountWriter

log = logging.getLogger(__name__)

# PostgreSQL unreachable (restarted, failing over, a network blip): the task backs off and runs
# again by itself after a random wait of up to 2, 4, 8... s (full jitter), capped at 60 s,
# instead of failing at once and waiting for the sweeper. A retry is a fresh message whose
# countdown stays far below the Redis visibility timeout. After the last retry the sweeper still
# finds the work in the database.
# A batch whose FCM sends went out keeps trying to record them (notifier.pipeline.send) for a
# minute or its lease, whichever is longer; only if the outage outlasts that is the batch left
# to the sweeper when its lease expires, and its devices sent twice (reliability.md, fault 10).
DATABASE_DOWN_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}


class _Process:
    """Per-process singletons, rebuilt if the process was forked after they were made."""

    pid: int | None = None
    runtime: Runtime
    # The apps' senders (notifier.fcm.sender.FcmSenders) and quota buckets, one per app.
    sender: Any = None
    limiter: PerAppLimiters
    # Given by `notifier worker` when no FCM credentials are configured (see use_emulator_account).
    emulator_account: ServiceAccountWriter | None = None

    _lock = threading.Lock()

    @classmethod
    def get(cls) -> type[_Process]:
        with cls._lock:  # the threads pool runs several tasks of one process at once
            cls._build_if_forked()
        return cls

    @classmethod
    def _build_if_forked(cls) -> None:
        if cls.pid != os.getpid():
            cls.runtime = Runtime.start(
                app.conf.notifier_settings,
                prepare_database=False,
                publisher_factory=lambda _settings: CeleryPublisher(app),
            )
            cls.sender = None
            runtime = cls.runtime
            cls.limiter = PerAppLimiters(lambda app_id: _make_limiter(runtime, app_id))
            cls.pid = os.getpid()

    @classmethod
    def fcm(cls) -> Any:
        with cls._lock:
            return cls._sender()

    @classmethod
    def _sender(cls) -> Any:
        if cls.sender is None:
            from notifier.fcm.sender import FcmSenders

            cls.sender = FcmSenders(cls.runtime.settings, emulator_account=cls.emulator_account)
        return cls.sender


def use_emulator_account(writer: ServiceAccountWriter) -> None:
    """Let this process's FCM sender write a service account for the emulator with ``writer``.

    ``notifier worker`` passes ``notifier.emulator.ensure_service_account`` when no real
    credentials are configured; the workers never import the emulator themselves.
    """
    _Process.emulator_account = writer


def _bucket_of(settings: Settings, app_id: str) -> str:
    """The app whose quota a batch of ``app_id`` spends (``default`` may stand for another)."""
    app = settings.apps.sending(app_id)
    return app.id if app is not None else app_id


def _make_limiter(runtime: Runtime, app_id: str) -> SendLimiter:
    """The quota bucket of ``app_id``, sized by the app's own ``quota_per_minute``."""
    settings = runtime.settings
    app = settings.apps.sending(app_id)
    per_minute = app.quota_per_minute if app is not None else settings.fcm_quota_per_minute
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        return RedisTokenBucket(
            client, per_minute, key=quota_key(settings.redis_key_prefix, app_id)
        )
    return LocalTokenBucket(per_minute)


@worker_ready.connect
def _warm_up_in_place(sender: Any = None, **_: Any) -> None:
    """Warm up the worker's own process when it runs tasks itself (threads or solo pool)."""
    pool = getattr(sender, "pool", None)
    if pool is not None and not type(pool).__module__.endswith("prefork"):
        _warm_up()


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Connect and fetch an FCM access token before the first alert, not during it.

    The first device of a breaking alert should not wait for imports, TLS and OAuth.
    """
    try:
        proc = _Process.get()
        proc.fcm().warm_up()
        with proc.runtime.engine.connect():
            pass
    except Exception:  # a cold start later is slower, not broken
        log.warning("worker warm-up failed; continuing cold", exc_info=True)


@worker_process_shutdown.connect
def _close_sender(**_: Any) -> None:
    if _Process.sender is not None and _Process.pid == os.getpid():
        _Process.sender.close()


@app.task(name=str(TaskName.PLAN_ALERT), **DATABASE_DOWN_RETRY)
def plan_alert(alert_id: str) -> dict[str, Any]:
    """Page the alert's audience into batches, publishing each batch as soon as it commits."""
    clear()
    bind(alert_id=alert_id)
    proc = _Process.get()
    publisher = proc.runtime.publisher
    result = planner.plan_slice(
        proc.runtime.sessions,
        alert_id,
        on_batch=lambda batch_id: publisher.publish(TriggerKind.SEND, str(batch_id)),
        default_locale=proc.runtime.settings.default_locale,
    )
    # A continuation trigger (result.continuation_trigger) was published when its page
    # committed, by the runtime's after-commit hook.
    log.info(
        "planned",
        extra={
            "fields": {
                "state": result.state,
                "batches": len(result.batch_ids),
                "devices": result.devices,
            }
        },
    )
    return {"state": result.state, "batches": len(result.batch_ids), "devices": result.devices}


@app.task(name=str(TaskName.SEND_BATCH), **DATABASE_DOWN_RETRY)
def send_batch(batch_id: int) -> dict[str, Any]:
    """Send one batch; a retry is a fresh message with a countdown, for the devices that need it."""
    clear()
    bind(batch_id=str(batch_id))
    proc = _Process.get()
    settings = proc.runtime.settings
    senders, default_app = proc.fcm(), settings.apps.default.id
    result = delivery.send_batch(
        proc.runtime.sessions,
        batch_id,
        sender=senders.for_app(default_app),
        limiter=proc.limiter.for_app(default_app),
        # Each batch is of one app: its own credentials, connection pool and quota bucket.
        sender_for=senders.for_app,
        limiter_for=lambda app_id: proc.limiter.for_app(_bucket_of(settings, app_id)),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_send_attempts,
        public_url=settings.public_url,
        default_locale=settings.default_locale,
        default_max_per_day=settings.default_max_per_day,
        # With several apps, a batch far past its app's quota is deferred, not slept on in the
        # slot another app's batch could use; a single app waits as before (nothing to gain).
        max_wait=MAX_IN_TASK_WAIT_SECONDS if len(settings.apps.ids) > 1 else None,
    )
    if result.retry_in is not None and result.retry_in <= MAX_COUNTDOWN:
        # Longer waits are left to the sweeper: a countdown past the broker's visibility
        # timeout would deliver the task more than once.
        proc.runtime.publisher.publish(TriggerKind.SEND, str(batch_id), countdown=result.retry_in)
    log.info("batch", extra={"fields": {"state": result.state, **result.counts}})
    return {"state": result.state, "counts": result.counts}


@app.task(name=str(TaskName.SWEEP))
def sweep() -> dict[str, int]:
    proc = _Process.get()
    settings = proc.runtime.settings
    report = sweeper.sweep(
        proc.runtime.sessions,
        proc.runtime.publisher,
        requeue_after=timedelta(seconds=settings.requeue_after_seconds),
    )
    # With two beats every sweep is scheduled twice; the one that found the lease taken says so.
    return {**report.as_dict(), "skipped": int(report.skipped)}


@app.task(name=str(TaskName.DELETE_STALE_DEVICES))
def delete_stale_devices() -> int:
    proc = _Process.get()
    days = proc.runtime.settings.device_retention_days
    return sweeper.delete_stale_devices(proc.runtime.sessions, older_than=timedelta(days=days))
