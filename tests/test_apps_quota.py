"""Each app spends its own quota: one bucket per app, in process memory or in Redis."""

from __future__ import annotations

import redis

from notifier.pipeline.quota import (
    Deferred,
    LocalTokenBucket,
    PerAppLimiters,
    RedisTokenBucket,
    quota_key,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_an_apps_exhausted_quota_makes_only_its_own_sends_wait() -> None:
    clock = FakeClock()
    quotas = {"en": 600_000, "fr": 600}
    limiters = PerAppLimiters(
        lambda app_id: LocalTokenBucket(quotas[app_id], clock=clock, sleep=clock.sleep)
    )
    fr = limiters.for_app("fr")
    assert fr.acquire(fr.max_chunk) == 0  # fr's whole burst (3 of 600)
    assert fr.acquire(1) > 0  # fr waits now...

    en_waits = [limiters.for_app("en").acquire(500) for _ in range(5)]

    assert en_waits == [0.0] * 5  # ... and en does not
    assert limiters.for_app("fr") is fr  # one bucket per app, made once


def test_each_app_has_its_own_redis_key_and_default_keeps_the_old_one() -> None:
    assert quota_key("p:", "default") == "p:notifier:fcm-quota"
    assert quota_key("p:", "fr") == "p:notifier:fcm-quota:fr"


def test_buckets_of_two_apps_in_redis_do_not_share_tokens(redis_url: str) -> None:
    from tests.conftest import _KEY_PREFIX

    client = redis.Redis.from_url(redis_url)
    prefix = _KEY_PREFIX.get()
    try:
        fr = RedisTokenBucket(client, 600, key=quota_key(prefix, "fr"))
        en = RedisTokenBucket(client, 600, key=quota_key(prefix, "en"))
        assert fr.acquire(3) == 0  # fr's whole burst
        # en's bucket is full: its burst costs no wait though fr's is empty.
        assert en.acquire(3) == 0
    finally:
        client.delete(quota_key(prefix, "fr"), quota_key(prefix, "en"))
        client.close()


def test_a_deferred_reservation_in_redis_takes_no_tokens(redis_url: str) -> None:
    """Past the bound the script answers the wait and writes nothing: the quota's rate holds."""
    from tests.conftest import _KEY_PREFIX

    client = redis.Redis.from_url(redis_url)
    key = quota_key(_KEY_PREFIX.get(), "fr")
    try:
        fr = RedisTokenBucket(client, 600, key=key)  # 3 tokens of burst, ~9.6 a second
        assert fr.acquire_within(3, max_wait=2.0) == 0  # within the bound: reserved, no wait
        before = client.hgetall(key)

        deferred = fr.acquire_within(60, max_wait=2.0)  # ~6 s of tokens: past the bound
        peeked = fr.peek(60)  # asked before a lease: the same answer, nothing taken either

        assert isinstance(deferred, Deferred)
        assert 2.0 < deferred.wait < 7.0 and 2.0 < peeked < 7.0
        assert client.hgetall(key) == before  # not a token taken, not even the clock moved
        # What was not taken is still there: a reservation within the bound gets it at once.
        assert fr.acquire_within(1, max_wait=2.0) < 0.2
    finally:
        client.delete(key)
        client.close()


def test_a_deferred_reservation_in_memory_takes_no_tokens_and_sleeps_not() -> None:
    clock = FakeClock()
    fr = LocalTokenBucket(600, clock=clock, sleep=clock.sleep)
    assert fr.acquire(3) == 0  # the whole burst

    deferred = fr.acquire_within(60, max_wait=2.0)

    assert isinstance(deferred, Deferred) and deferred.wait > 2.0
    assert clock.slept == []
    clock.now += 0.5
    # Half a second refilled ~4.8 tokens, none of them taken by the deferral: 3 at no wait.
    assert fr.acquire_within(3, max_wait=2.0) == 0
