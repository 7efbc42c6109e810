"""Several apps in one deployment, end to end: real workers, PostgreSQL, Redis, the emulator.

Two apps, each its own Firebase project, service-account file and quota, are served side by
side by the same workers; one app's credentials revoked (fault 12) fails only that app's
devices, with a reason, and prunes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import redis
from sqlalchemy import select

from notifier.core.models import Batch, Delivery, Device
from notifier.emulator import write_service_account
from notifier.pipeline.quota import RedisTokenBucket, quota_key
from tests.pipeline.conftest import Stack

EN, FR = "en", "fr"
# How far ahead fr's tokens are taken in the test of deferral: long enough that en's alert,
# queued behind fr's, goes out before fr's tokens are due even on a loaded machine.
FR_DEBT_SECONDS = 30
PROJECTS = {EN: "news-en", FR: "news-fr"}


def _apps_file(folder: Path, emulator: str, fr_quota: int | None = None) -> Path:
    """Two apps with service accounts of their own (token_uri: the emulator's)."""
    tables = []
    for app_id, project in PROJECTS.items():
        write_service_account(
            folder / f"{app_id}.json", project_id=project, token_uri=f"{emulator}/token"
        )
        table = (
            f'[[app]]\nid = "{app_id}"\nproject_id = "{project}"\ncredentials = "{app_id}.json"\n'
        )
        if app_id == FR and fr_quota is not None:
            table += f"quota_per_minute = {fr_quota}\n"
        tables.append(table)
    path = folder / "apps.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def _two_app_stack(
    stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str, **env: str
) -> Stack:
    folder = tmp_path / "apps"
    folder.mkdir()
    fr_quota = env.pop("fr_quota", None)
    apps_file = _apps_file(folder, emulator, int(fr_quota) if fr_quota else None)
    return stack_factory(apps_file=str(apps_file), **env)


def _subscribe(stack: Stack, app_id: str, count: int, prefix: str) -> list[str]:
    tokens = [f"{prefix}-{app_id}-{i:04d}-APA91b{'x' * 20}" for i in range(count)]
    for tok in tokens:
        response = stack.client.post(
            "/v1/subscriptions",
            json={"token": tok, "platform": "android", "topics": ["israel"], "app": app_id},
        )
        assert response.status_code == 201, response.json
    return tokens


def _wait_until_ready(stack: Stack, timeout: float = 90) -> None:
    """Until the worker says it is ready (Celery's "ready." line), so it is consuming."""
    deadline = time.monotonic() + timeout
    while " ready." not in stack.worker_logs():
        assert time.monotonic() < deadline, stack.worker_logs()[-4000:]
        time.sleep(0.2)


def _project_of(message: dict[str, object]) -> str:
    return str(message["name"]).split("/")[1]


def test_two_apps_with_their_own_credentials_and_quotas_are_served_side_by_side(
    stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str
) -> None:
    # fr's quota is 60 a minute (FCM's is enforced by the emulator for news-fr alone); en has
    # FCM's default. fr's devices take a while; en's must not wait for them.
    stack = _two_app_stack(stack_factory, tmp_path, emulator, fr_quota="60")
    stack.emulator._call("POST", "/emulator/quota", {"per_minute": 60, "project": PROJECTS[FR]})
    en_tokens = _subscribe(stack, EN, 30, "side")
    fr_tokens = _subscribe(stack, FR, 6, "side")
    stack.start_worker(concurrency=2)

    alert = stack.post_alert(headline="Both editions")
    view = stack.wait_for_status(alert["id"], timeout=120)

    assert view["status"] == "sent"
    assert view["counts"]["sent"] == 36 and view["counts"]["failed"] == 0
    assert view["by_app"][EN]["sent"] == 30 and view["by_app"][FR]["sent"] == 6
    messages = stack.emulator.messages()
    by_project = {
        p: sorted(str(m["token"]) for m in messages if _project_of(m) == p)
        for p in PROJECTS.values()
    }
    assert by_project == {PROJECTS[EN]: sorted(en_tokens), PROJECTS[FR]: sorted(fr_tokens)}
    stats = stack.emulator.stats()
    # Each app's own bucket kept its project under its quota: not one 429.
    assert "QUOTA_EXCEEDED" not in stats["projects"][PROJECTS[FR]]
    assert "QUOTA_EXCEEDED" not in stats["projects"][PROJECTS[EN]]
    # fr's quota held back only fr: every en device was delivered before fr's last one.
    last_fr = max(int(m["seq"]) for m in messages if _project_of(m) == PROJECTS[FR])
    assert all(int(m["seq"]) < last_fr for m in messages if _project_of(m) == PROJECTS[EN])


def test_an_alert_for_some_apps_reaches_only_their_devices(
    stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str
) -> None:
    stack = _two_app_stack(stack_factory, tmp_path, emulator)
    _subscribe(stack, EN, 3, "only")
    fr_tokens = _subscribe(stack, FR, 4, "only")
    stack.start_worker(concurrency=1)

    alert = stack.post_alert(headline="Édition française", apps=[FR])
    view = stack.wait_for_status(alert["id"])

    assert view["apps"] == [FR]
    assert view["counts"]["audience"] == 4 and view["counts"]["sent"] == 4
    assert list(view["by_app"]) == [FR]
    assert sorted(stack.emulator.tokens()) == sorted(fr_tokens)


def test_fault_12_one_apps_credentials_revoked_fail_only_its_devices_and_prune_nothing(
    stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str
) -> None:
    stack = _two_app_stack(stack_factory, tmp_path, emulator, max_send_attempts="2")
    en_tokens = _subscribe(stack, EN, 5, "revoked")
    _subscribe(stack, FR, 5, "revoked")
    fr_account = json.loads((tmp_path / "apps" / "fr.json").read_text())["client_email"]
    stack.start_worker(concurrency=2)
    # Revoked after the worker started: tokens it may already hold are refused too.
    stack.emulator._call("POST", "/emulator/oauth/revoked", {"accounts": [fr_account]})

    alert = stack.post_alert(headline="Credentials revoked for one app")
    view = stack.wait_for_status(alert["id"], timeout=120)

    counts = view["counts"]
    assert (counts["sent"], counts["failed"], counts["pruned"], counts["pending"]) == (5, 5, 0, 0)
    assert view["by_app"][EN]["sent"] == 5 and view["by_app"][EN]["failed"] == 0
    assert view["by_app"][FR]["failed"] == 5 and view["by_app"][FR]["sent"] == 0
    assert sorted(stack.emulator.tokens()) == sorted(en_tokens)
    with stack.runtime.sessions() as session:
        reasons = set(
            session.scalars(
                select(Delivery.error_code)
                .join(Device, Device.id == Delivery.device_id)
                .where(Delivery.alert_id == alert["id"], Device.app == FR)
            )
        )
        states = set(session.scalars(select(Device.state)))
    assert reasons == {"UNAUTHENTICATED:gave_up"}
    assert states == {"active"}  # a refused credential says nothing about the devices
    metrics = stack.client.get("/metrics").get_data(as_text=True)
    # Operators see which app is failing: fr's attempts were all retries, en's all accepted.
    assert 'notifier_app_sends_total{app="fr",outcome="retry"} 10.0' in metrics
    assert 'notifier_app_sends_total{app="en",outcome="accepted"} 5.0' in metrics
    assert 'notifier_app_sends_total{app="fr",outcome="accepted"}' not in metrics
    assert 'notifier_app_devices{app="fr",state="active"} 5.0' in metrics


def test_a_batch_far_past_its_apps_quota_frees_the_worker_for_the_other_app(
    stack_factory: Callable[..., Stack], tmp_path: Path, emulator: str
) -> None:
    # fr's quota is 600 a minute (3 of burst, so its 3 devices are one chunk) and a fan-out
    # elsewhere has already taken its next 30 s of tokens; the worker has one slot. fr's alert
    # is queued first. Sleeping for fr's tokens would hold that slot for the 30 s; the batch
    # is given back instead, en's alert goes out meanwhile, and fr's follows when its tokens are
    # there, under its quota.
    stack = _two_app_stack(stack_factory, tmp_path, emulator, fr_quota="600")
    stack.emulator._call("POST", "/emulator/quota", {"per_minute": 600, "project": PROJECTS[FR]})
    en_tokens = _subscribe(stack, EN, 5, "defer")
    fr_tokens = _subscribe(stack, FR, 3, "defer")
    stack.start_worker(concurrency=1)
    _wait_until_ready(stack)
    client = redis.Redis.from_url(stack.settings.redis_url or "")
    fr_bucket = RedisTokenBucket(client, 600, key=quota_key(stack.settings.redis_key_prefix, FR))
    fr_bucket.reserve(int(fr_bucket.rate * FR_DEBT_SECONDS))
    client.close()

    fr_alert = stack.post_alert(headline="Édition française", apps=[FR])
    en_alert = stack.post_alert(headline="English edition", apps=[EN])
    en_view = stack.wait_for_status(en_alert["id"], timeout=120)

    # en went out while fr's alert, queued before it, had sent nothing yet.
    assert en_view["status"] == "sent" and en_view["counts"]["sent"] == 5
    fr_now = stack.alert(fr_alert["id"])
    assert fr_now["counts"]["sent"] == 0 and fr_now["counts"]["pending"] == 3
    assert sorted(stack.emulator.tokens()) == sorted(en_tokens)

    fr_view = stack.wait_for_status(fr_alert["id"], timeout=120)

    assert fr_view["status"] == "sent" and fr_view["counts"]["sent"] == 3
    assert fr_view["counts"]["failed"] == 0
    messages = stack.emulator.messages()
    fr_sent = sorted(str(m["token"]) for m in messages if _project_of(m) == PROJECTS[FR])
    assert fr_sent == sorted(fr_tokens)  # each once: giving back sent nobody twice
    first_fr = min(int(m["seq"]) for m in messages if _project_of(m) == PROJECTS[FR])
    assert all(int(m["seq"]) < first_fr for m in messages if _project_of(m) == PROJECTS[EN])
    assert "QUOTA_EXCEEDED" not in stack.emulator.stats()["projects"][PROJECTS[FR]]
    metrics = stack.client.get("/metrics").get_data(as_text=True)
    assert 'notifier_app_quota_deferrals_total{app="fr"}' in metrics
    assert 'notifier_app_quota_deferrals_total{app="en"}' not in metrics
    with stack.runtime.sessions() as session:
        attempts = set(
            session.scalars(select(Batch.attempts).where(Batch.alert_id == fr_alert["id"]))
        )
    assert attempts == {1}  # the deferrals counted no attempt
