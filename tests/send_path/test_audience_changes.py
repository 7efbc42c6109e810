"""Changes while an alert is out: a cancel mid-batch, devices pruned or deleted since planning."""

from __future__ import annotations

from sqlalchemy import update

from notifier.core.db import transaction
from notifier.core.models import Device
from notifier.subscriptions.service import unsubscribe
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import FakeSender, fatal, fcm_error, prune, retry


def test_cancelling_mid_batch_leaves_the_rest_of_the_alert_cancelled(send_path: SendPath) -> None:
    tokens = send_path.add_devices("cancel", 10)  # batches of 4, 4 and 2
    alert_id = send_path.new_alert()
    first, *others = send_path.plan(alert_id)
    sender = FakeSender(
        script={tokens[3]: retry(after=5)}, during_send=lambda: send_path.cancel(alert_id)
    )
    in_flight = send_path.send(first, sender)
    send_path.clock.advance(5)

    rest = [send_path.send(batch_id, sender) for batch_id in [first, *others]]

    # FCM had the batch in flight: its answers are recorded; nothing else goes out.
    assert in_flight.counts["sent"] == 3
    assert [r.state for r in rest] == ["cancelled", "skipped", "skipped"]
    assert sender.sent_tokens == tokens[:4]
    assert send_path.statuses(alert_id) == {"sent": 3, "cancelled": 7}
    assert send_path.alert(alert_id).status == "cancelled"
    assert {send_path.batch(b).status for b in [first, *others]} == {"cancelled"}
    send_path.assert_counts_add_up(alert_id)


def test_devices_pruned_or_deleted_since_planning_are_recorded_not_sent(
    send_path: SendPath,
) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("gone", 4)
    with transaction(send_path.runtime.sessions) as session:
        session.execute(update(Device).where(Device.token == tokens[1]).values(state="dead"))
        unsubscribe(session, token=tokens[2], topics=None)  # forgets the device entirely
    sender = FakeSender()

    result = send_path.send(batch_id, sender)

    assert result.state == "done"
    assert sender.sent_tokens == [tokens[0], tokens[3]]
    deliveries = send_path.deliveries(alert_id)
    assert (deliveries[tokens[1]].status, deliveries[tokens[1]].error_code) == (
        "pruned",
        "already_pruned",
    )
    [deleted] = [d for token, d in deliveries.items() if token.startswith("device-")]
    assert (deleted.status, deleted.error_code) == ("failed", "device_gone")
    assert send_path.statuses(alert_id) == {"sent": 2, "pruned": 1, "failed": 1}
    assert send_path.alert(alert_id).status == "sent"
    send_path.assert_counts_add_up(alert_id)


def test_a_pruned_token_is_marked_dead_and_left_out_of_later_alerts(send_path: SendPath) -> None:
    tokens = send_path.add_devices("prune", 3)
    first_alert = send_path.new_alert()
    [batch_id] = send_path.plan(first_alert)
    send_path.send(batch_id, FakeSender(script={tokens[0]: prune("UNREGISTERED")}))
    later_alert = send_path.new_alert()

    [later_batch] = send_path.plan(later_alert)

    assert send_path.device_state(tokens[0]) == ("dead", "UNREGISTERED")
    assert set(send_path.deliveries(later_alert)) == set(tokens[1:])
    later = FakeSender()
    send_path.send(later_batch, later)
    assert later.sent_tokens == tokens[1:]
    assert send_path.deliveries(first_alert)[tokens[0]].error_code == "UNREGISTERED"
    send_path.assert_counts_add_up(first_alert)
    send_path.assert_counts_add_up(later_alert)


def test_a_token_pruned_by_one_alert_is_not_sent_by_another_planned_before(
    send_path: SendPath,
) -> None:
    tokens = send_path.add_devices("race", 3)
    first_alert, second_alert = send_path.new_alert(), send_path.new_alert()
    [first_batch] = send_path.plan(first_alert)
    [second_batch] = send_path.plan(second_alert)
    send_path.send(first_batch, FakeSender(script={tokens[1]: fcm_error("SENDER_ID_MISMATCH")}))
    second = FakeSender()

    send_path.send(second_batch, second)

    assert second.sent_tokens == [tokens[0], tokens[2]]
    assert send_path.deliveries(second_alert)[tokens[1]].status == "pruned"
    assert send_path.statuses(second_alert) == {"sent": 2, "pruned": 1}
    send_path.assert_counts_add_up(second_alert)


def test_a_fatal_error_fails_the_device_without_pruning_its_token(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("fatal", 3)
    sender = FakeSender(
        script={
            tokens[0]: fatal("THIRD_PARTY_AUTH_ERROR"),
            tokens[1]: fcm_error("INVALID_ARGUMENT"),  # about the payload, not the token
        }
    )

    send_path.send(batch_id, sender)

    deliveries = send_path.deliveries(alert_id)
    assert deliveries[tokens[0]].error_code == "THIRD_PARTY_AUTH_ERROR"
    assert deliveries[tokens[1]].error_code == "INVALID_ARGUMENT"
    assert send_path.statuses(alert_id) == {"sent": 1, "failed": 2}
    assert send_path.device_state(tokens[0]) == ("active", None)
    assert send_path.device_state(tokens[1]) == ("active", None)
    send_path.assert_counts_add_up(alert_id)


def test_an_alert_no_device_accepted_ends_failed_with_a_reason(send_path: SendPath) -> None:
    tokens, alert_id, batch_id = send_path.one_batch("nobody", 2)

    send_path.send(batch_id, FakeSender(script=dict.fromkeys(tokens, fatal())))

    alert = send_path.alert(alert_id)
    assert (alert.status, alert.status_reason) == ("failed", "no device accepted the alert")
    send_path.assert_counts_add_up(alert_id)
