"""Leases: one worker sends a batch at a time; a dead worker's batch is taken over, once."""

from __future__ import annotations

import pytest

from notifier.pipeline.send import BatchResult
from tests.send_path.conftest import LEASE_SECONDS, SendPath
from tests.send_path.fake_sender import FakeSender, prune


class WorkerDied(Exception):
    """Stands for a worker killed mid-send: nothing after the send runs."""


def _die() -> None:
    raise WorkerDied


def test_a_leased_batch_is_not_sent_by_a_second_caller(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("lease", 3)
    duplicate = FakeSender()
    seen: list[BatchResult] = []
    owner = FakeSender(during_send=lambda: seen.append(send_path.send(batch_id, duplicate)))

    result = send_path.send(batch_id, owner)

    assert [r.state for r in seen] == ["skipped"]
    assert duplicate.requests == []
    assert result.state == "done"
    assert owner.sent_tokens == tokens
    assert send_path.statuses(alert_id) == {"sent": 3}
    send_path.assert_counts_add_up(alert_id)


def test_a_dead_workers_batch_is_not_taken_over_before_its_lease_expires(
    send_path: SendPath,
) -> None:
    _, alert_id, batch_id = send_path.one_batch("early", 2)
    with pytest.raises(WorkerDied):
        send_path.send(batch_id, FakeSender(during_send=_die))
    send_path.clock.advance(LEASE_SECONDS - 1)
    rescuer = FakeSender()

    result = send_path.send(batch_id, rescuer)

    assert result.state == "skipped"
    assert rescuer.requests == []
    assert send_path.statuses(alert_id) == {"pending": 2}
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_whose_lease_expired_is_taken_over(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("expired", 3)
    with pytest.raises(WorkerDied):
        send_path.send(batch_id, FakeSender(during_send=_die))
    send_path.clock.advance(LEASE_SECONDS + 1)
    rescuer = FakeSender()

    result = send_path.send(batch_id, rescuer)

    assert result.state == "done"
    assert rescuer.sent_tokens == tokens
    assert send_path.batch(batch_id).attempts == 2
    assert send_path.statuses(alert_id) == {"sent": 3}
    assert send_path.alert(alert_id).status == "sent"
    send_path.assert_counts_add_up(alert_id)


def test_a_lease_lost_mid_send_does_not_double_record(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("lost", 3)
    rescuer = FakeSender()
    taken_over: list[BatchResult] = []

    def stall_past_the_lease() -> None:
        send_path.clock.advance(LEASE_SECONDS + 1)
        taken_over.append(send_path.send(batch_id, rescuer))

    # The slow worker would prune the first token; its answer must not be recorded.
    slow = FakeSender(script={tokens[0]: prune()}, during_send=stall_past_the_lease)

    result = send_path.send(batch_id, slow)

    assert result.state == "lease_lost"
    assert [r.state for r in taken_over] == ["done"]
    assert rescuer.sent_tokens == tokens
    deliveries = send_path.deliveries(alert_id)
    assert {t: (d.status, d.attempts) for t, d in deliveries.items()} == {
        t: ("sent", 1) for t in tokens
    }
    assert send_path.device_state(tokens[0]) == ("active", None)
    assert send_path.alert(alert_id).sent == 3
    send_path.assert_counts_add_up(alert_id)


def test_a_redelivered_batch_is_not_sent_twice(send_path: SendPath) -> None:
    _, alert_id, batch_id = send_path.one_batch("again", 3)
    sender = FakeSender()
    send_path.send(batch_id, sender)

    redelivered = send_path.send(batch_id, sender)

    assert redelivered.state == "skipped"
    assert len(sender.requests) == 1
    assert send_path.alert(alert_id).sent == 3
    send_path.assert_counts_add_up(alert_id)


def test_a_batch_whose_alert_is_gone_is_skipped_not_sent(send_path: SendPath) -> None:
    if send_path.runtime.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite, with its foreign keys off, can keep a batch without its alert")
    _, alert_id, batch_id = send_path.one_batch("orphan", 2)
    # Without the cascade, the batch outlives its alert: what a lease reading between an
    # operator's delete of the alert and of its batches would see.
    raw = send_path.runtime.engine.raw_connection()  # autocommit, outside SQLAlchemy's BEGIN
    try:
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))
    finally:
        raw.close()
    assert send_path.batch(batch_id).alert_id == alert_id
    sender = FakeSender()

    result = send_path.send(batch_id, sender)

    assert result.state == "skipped"
    assert sender.requests == []


def test_a_lease_lost_while_the_new_owner_still_holds_it_records_nothing(
    send_path: SendPath,
) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("held", 3)

    def stall_until_another_worker_holds_the_lease() -> None:
        send_path.clock.advance(LEASE_SECONDS + 1)
        with pytest.raises(WorkerDied):  # the new owner leased it and is not done with it
            send_path.send(batch_id, FakeSender(during_send=_die))

    slow = FakeSender(
        script={tokens[0]: prune()}, during_send=stall_until_another_worker_holds_the_lease
    )

    result = send_path.send(batch_id, slow)

    assert result.state == "lease_lost"
    assert send_path.batch(batch_id).status == "sending"
    assert send_path.statuses(alert_id) == {"pending": 3}
    assert send_path.device_state(tokens[0]) == ("active", None)
    send_path.assert_counts_add_up(alert_id)
