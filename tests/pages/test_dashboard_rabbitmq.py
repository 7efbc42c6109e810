"""The ops dashboard on RabbitMQ: a waiting message is counted, and its unknown age said so."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.pages.conftest import Browsing
from tests.pipeline.conftest import Stack, subscribe


@pytest.mark.parametrize("broker", ["amqp"], indirect=True)
def test_the_dashboard_counts_a_rabbitmq_queue_and_says_its_oldest_age_is_unknown(
    stack: Stack, browsing: Browsing, ops_key: str
) -> None:
    subscribe(stack, "dash-rabbit-APA91b-0001", ["israel"])
    stack.post_alert(headline="Waiting in RabbitMQ")  # no worker: the plan trigger waits

    browsing.open("/dashboard", ops_key)

    planner = browsing.page.locator("#queue-rows tr", has_text="planner")
    expect(planner.locator(".depth")).to_have_text("1")
    expect(planner.locator(".oldest")).to_have_text("unknown")
    breaking = browsing.page.locator("#queue-rows tr", has_text="breaking")
    expect(breaking.locator(".oldest")).to_have_text("—")
    browsing.screenshot("dashboard-rabbitmq-queues")
    assert browsing.problems == []
