"""The harness's loss accounting (loadtest/ledger.py): table-driven, no clock, no server."""

from __future__ import annotations

from parley.loadtest.ledger import Ledger


def test_delivered_message_is_not_lost() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], 10, "dm", now=1)
    led.on_delivery("bob", 10)
    assert led.overdue(now=100) == [] and led.summary()["delivered"] == 1 and led.summary()["lost"] == 0


def test_delivery_before_the_ack_counts() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_delivery("bob", 10)
    led.on_ack(["bob"], 10, "dm", now=1)
    assert led.owed == {} and led.overdue(now=100, final=True) == [] and led.delivered == 1


def test_synced_recipient_missing_a_message_past_the_timeout_is_a_loss_reported_once() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], 10, "group", now=1)
    assert led.overdue(now=5.9) == []
    assert led.overdue(now=6.0) == [("bob", 10, "group")]
    assert led.overdue(now=60) == [] and led.summary()["lost"] == 1 and led.summary()["lost_group"] == 1


def test_offline_recipient_owes_nothing_until_synced_again_then_the_clock_restarts() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.away("bob")
    led.on_ack(["bob"], 10, "dm", now=1)
    assert led.overdue(now=50) == [] and led.overdue(now=50, final=True) == []
    assert led.summary()["owed_to_offline"] == 1
    led.online("bob", now=60)
    assert led.overdue(now=64) == []
    assert led.overdue(now=65) == [("bob", 10, "dm")]


def test_final_check_counts_what_a_synced_recipient_still_misses() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], 10, "dm", now=1)
    assert led.overdue(now=2, final=True) == [("bob", 10, "dm")]


def test_recipients_not_in_the_run_are_not_expected() -> None:
    led = Ledger()
    led.online("bob", now=0)
    led.on_ack(["bob", "carol"], 10, "group", now=1)
    assert led.expected == 1 and list(led.owed) == [("bob", 10)]


def test_messages_before_a_recipients_start_cursor_are_not_owed() -> None:
    led = Ledger(loss_timeout=5)
    led.away("bob")  # spawned, still logging in
    led.on_ack(["bob"], 7, "group", now=1)  # sent before bob read his start cursor
    led.start("bob", cursor=9)  # bob starts "from now": 9
    led.on_ack(["bob"], 8, "dm", now=2)
    led.on_ack(["bob"], 10, "dm", now=3)
    led.online("bob", now=4)
    assert list(led.owed) == [("bob", 10)] and led.expected == 1
    assert led.overdue(now=100) == [("bob", 10, "dm")]
