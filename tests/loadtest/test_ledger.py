"""The harness's loss accounting (loadtest/ledger.py): table-driven, no clock, no server. Ids are of
protocol v2: compared only within a conversation ("a", "b")."""

from __future__ import annotations

import pytest
from parley.loadtest.ledger import Ledger, merge, verdict


def test_delivered_message_is_not_lost() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], "a", 10, "dm", now=1)
    assert led.on_delivery("bob", "a", 10, 0) == "new"
    assert led.overdue(now=100) == [] and led.summary()["delivered"] == 1 and led.summary()["lost"] == 0


def test_delivery_before_the_ack_counts() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_delivery("bob", "a", 10, 0)
    led.on_ack(["bob"], "a", 10, "dm", now=1)
    assert led.owed == {} and led.overdue(now=100, final=True) == [] and led.delivered == 1


def test_synced_recipient_missing_a_message_past_the_timeout_is_a_loss_reported_once() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], "g", 10, "group", now=1)
    assert led.overdue(now=5.9) == []
    assert led.overdue(now=6.0) == [("bob", 10, "group")]
    assert led.overdue(now=60) == [] and led.summary()["lost"] == 1 and led.summary()["lost_group"] == 1


def test_offline_recipient_owes_nothing_until_synced_again_then_the_clock_restarts() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.away("bob")
    led.on_ack(["bob"], "a", 10, "dm", now=1)
    assert led.overdue(now=50) == [] and led.overdue(now=50, final=True) == []
    assert led.summary()["owed_to_offline"] == 1
    led.online("bob", now=60)
    assert led.overdue(now=64) == []
    assert led.overdue(now=65) == [("bob", 10, "dm")]


def test_final_check_counts_what_a_synced_recipient_still_misses() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], "a", 10, "dm", now=1)
    assert led.overdue(now=2, final=True) == [("bob", 10, "dm")]


def test_recipients_not_in_the_run_are_not_expected() -> None:
    led = Ledger()
    led.online("bob", now=0)
    led.on_ack(["bob", "carol"], "g", 10, "group", now=1)
    assert led.expected == 1 and list(led.owed) == [("bob", "g", 10)]


def test_messages_before_a_recipients_start_are_not_owed_per_conversation() -> None:
    led = Ledger(loss_timeout=5)
    led.away("bob")  # spawned, still logging in
    led.on_ack(["bob"], "a", 7, "dm", now=1)  # sent before bob read where his conversations stand
    led.start("bob", {"a": 9, "b": 200})  # bob starts "from now": a at 9, b at 200
    led.on_ack(["bob"], "a", 8, "dm", now=2)
    led.on_ack(["bob"], "a", 10, "dm", now=3)
    led.on_ack(["bob"], "b", 130, "dm", now=3)  # below b's start, though above a's: not owed
    led.on_ack(["bob"], "c", 5, "dm", now=3)  # a conversation he had no message in: owed
    led.online("bob", now=4)
    assert sorted(led.owed) == [("bob", "a", 10), ("bob", "c", 5)] and led.expected == 2
    led.on_delivery("bob", "b", 130, 66)  # synced history before his start: neither owed nor early
    assert led.early == set()
    assert led.overdue(now=100) == [("bob", 10, "dm"), ("bob", 5, "dm")]


def test_chains_are_judged_per_recipient_and_only_new_messages_pay() -> None:
    led = Ledger(loss_timeout=5)
    led.online("bob", now=0)
    led.on_ack(["bob"], "a", 10, "dm", now=1)
    assert led.on_delivery("bob", "a", 74, 10) == "new"  # 74 was sent by someone not watched: fine
    assert led.on_delivery("bob", "a", 10, 0) == "duplicate"  # below what this connection sent: twice
    led.chain("bob").reconnected(with_cursor=False)
    assert led.on_delivery("bob", "a", 74, 10) == "resent"
    assert led.on_delivery("bob", "a", 202, 138) == "gap"
    assert led.on_delivery("bob", "a", 266, 202, own=True) == "new"  # his own echo: judged, owes nothing
    s = led.summary()
    assert (s["gaps"], s["duplicates"], s["resent"], s["delivered"], len(led.early)) == (1, 1, 1, 0, 2)


def test_workers_ledgers_add_up_to_the_runs() -> None:
    a = {"acked": 10, "expected_deliveries": 12, "delivered": 12, "lost": 0, "gaps": 0, "duplicates": 0}
    b = {"acked": 5, "expected_deliveries": 6, "delivered": 5, "lost": 1, "lost_dm": 1, "gaps": 0, "duplicates": 0}
    assert merge([a, b]) == {"acked": 15, "expected_deliveries": 18, "delivered": 17, "lost": 1, "lost_dm": 1,
                             "gaps": 0, "duplicates": 0}
    assert merge([]) == {}


@pytest.mark.parametrize(("ledger", "workers", "missing", "ok", "says"), [
    ({"acked": 3, "delivered": 3}, 2, 0, True, "parley ledger (2 workers): acked 3, expected deliveries 0, "
                                                "delivered 3, lost 0, gaps 0, duplicates 0, owed to offline 0: OK"),
    ({"acked": 3, "delivered": 2, "lost": 1}, 2, 0, False, "lost 1"),
    ({"acked": 3, "delivered": 3, "gaps": 1}, 1, 0, False, "(1 worker)"),
    ({"acked": 3, "delivered": 3, "duplicates": 2}, 1, 0, False, "duplicates 2"),
    ({"acked": 3, "delivered": 3}, 3, 1, False, "(3 workers, 1 never reported)"),
    ({"acked": 0, "delivered": 0}, 1, 0, False, "delivered 0"),
])
def test_the_verdict_fails_on_loss_wrong_order_silence_or_nothing_delivered(ledger, workers, missing, ok, says):
    got, line = verdict(ledger, workers, missing)
    assert got is ok and says in line and line.endswith("OK" if ok else "FAILED")
