"""The side-by-side bench's arithmetic (loadtest/efficiency_accounting.py): one window for CPU and
deliveries, the ladder of rates, which step costs are quoted at, and the exactly-once ledger."""

from __future__ import annotations

from typing import Any

import pytest
from parley.loadtest.efficiency_accounting import (
    RULE_80,
    RULE_P99,
    Mark,
    ledger,
    maximum,
    next_rate,
    quoted,
    refine,
    same_load,
    sustained,
    window,
)


def test_cpu_and_deliveries_come_from_the_same_two_marks() -> None:
    a = Mark(10.0, {"node1": 1.0, "nats-server": 0.5, "client": 3.0}, 1_000)
    b = Mark(12.0, {"node1": 1.4, "nats-server": 0.6, "client": 4.0}, 3_000)
    w = window(a, b, {"node1", "nats-server"})
    assert w["deliveries"] == 2_000
    assert w["deliveries_per_s"] == 1_000
    assert w["server_cpu_s"] == pytest.approx(0.5)  # the client is not a server
    assert w["cpu_ms_per_delivery"] == pytest.approx(0.25)
    assert w["cpu_ms_per_delivery_by_process"] == {"node1": pytest.approx(0.2), "nats-server": pytest.approx(0.05)}
    assert w["cpu_pct"]["client"] == pytest.approx(50.0)
    assert w["core_busy_pct"] == {}  # no core readings in these marks


def test_each_core_is_as_busy_as_the_machine_says_over_the_window() -> None:
    a = Mark(0.0, {}, 0, {0: 10.0, 1: 5.0})
    b = Mark(2.0, {}, 0, {0: 11.8, 1: 5.5})
    assert window(a, b, set())["core_busy_pct"] == {"0": pytest.approx(90.0), "1": pytest.approx(25.0)}


def test_a_process_read_in_one_mark_only_stays_out_and_no_delivery_means_no_cost() -> None:
    a = Mark(0.0, {"node1": 1.0, "archiver": None}, 5)
    b = Mark(1.0, {"node1": 1.0, "archiver": 2.0}, 5)
    w = window(a, b, {"node1", "archiver"})
    assert w["cpu_ms_per_delivery"] is None
    assert "archiver" not in w["cpu_pct"]


def step(rate: float, delivered_per_s: float, p99: float | None, missing: int = 0, fanout: int = 1,
         wall: float = 2.0) -> dict[str, Any]:
    return {"offered_rate": rate, "offered_deliveries_per_s": rate * fanout, "missing_after_drain": missing,
            "e2e": {"p99_ms": p99},
            "window": {"wall_s": wall, "deliveries": int(delivered_per_s * wall), "deliveries_per_s": delivered_per_s}}


@pytest.mark.parametrize(("s", "ok"), [
    (step(100, 100, 5.0), True),
    (step(100, 90, 5.0), True),  # 90% delivered within the window is enough
    (step(100, 89, 5.0), False),
    (step(100, 100, 1001.0), False),  # p99 past 1 s
    (step(100, 100, 5.0, missing=1), False),  # something never came
    (step(100, 100, None), False),  # no sample
    (step(10, 490, 5.0, fanout=49), True),  # deliveries offered = messages x members
    (step(10, 400, 5.0, fanout=49), False),
])
def test_sustained(s: dict[str, Any], ok: bool) -> None:
    assert sustained(s) is ok


def test_the_ladder_doubles_until_a_step_fails() -> None:
    assert next_rate([step(100, 100, 5)]) == 200


def test_a_failed_step_is_tried_once_more() -> None:
    ok, failed = step(100, 100, 5), step(200, 50, 5)
    assert next_rate([ok, failed]) == 200
    assert next_rate([ok, failed, step(200, 200, 5)]) == 400  # a stall, not a limit
    assert next_rate([ok, failed, failed]) is None


def test_the_ladder_halves_while_nothing_was_sustained_and_does_not_go_back_to_a_failed_rate() -> None:
    failed = step(200, 50, 5)
    assert next_rate([failed, failed]) == 100
    assert next_rate([failed, failed, step(100, 100, 5)]) is None  # 200 failed twice
    assert next_rate([step(1, 0, 5), step(1, 0, 5)]) is None  # below the floor


def test_the_same_load_is_the_busiest_rate_both_systems_sustained() -> None:
    a = [step(100, 100, 5), step(200, 200, 5), step(400, 100, 5)]
    b = [step(100, 100, 5), step(200, 200, 5), step(400, 400, 5), step(800, 800, 5)]
    assert same_load(a, b) == (a[1], b[1])
    assert same_load([step(100, 10, 5)], b) is None


def test_maximum_is_the_busiest_sustained_step() -> None:
    steps = [step(100, 100, 5), step(200, 200, 40), step(400, 300, 900)]
    assert maximum(steps) is steps[1]
    assert maximum([step(100, 10, 5)]) is None


def test_costs_are_quoted_at_the_busiest_step_with_p99_within_50_ms() -> None:
    steps = [step(100, 100, 5), step(200, 200, 40), step(400, 400, 300)]
    at_80 = step(320, 320, 120)
    assert quoted([*steps, at_80], at_80) == (steps[1], RULE_P99)


def test_refining_tries_halfway_between_the_busiest_calm_step_and_the_next_one_tried_above_it() -> None:
    steps = [step(160, 160, 5), step(320, 320, 8), step(640, 640, 56), step(1280, 1280, 61)]
    assert refine(steps) == 480.0
    assert refine([*steps, step(480, 480, 30)]) == 560.0  # calm at 480: between it and 640
    assert refine([*steps, step(480, 480, 70)]) == 400.0  # not calm at 480: between 320 and it
    at_480 = step(480, 480, 30)
    assert quoted([*steps, at_480], None) == (at_480, RULE_P99)  # a refined step is quoted like any other


def test_refining_stops_when_close_enough_or_when_there_is_nothing_to_refine() -> None:
    assert refine([step(320, 320, 8), step(360, 360, 60)]) is None  # within 15%
    assert refine([step(320, 320, 8), step(360, 360, 60)], resolution=1.1) == 340.0
    assert refine([step(320, 320, 8), step(640, 640, 40)]) is None  # the ladder ran out: nothing failed above
    assert refine([step(320, 320, 60), step(640, 640, 80)]) is None  # nothing calm
    assert refine([step(320, 320, 8), step(640, 100, 20)]) == 480.0  # not sustained counts as not calm


def test_costs_are_quoted_at_80_percent_when_no_step_kept_p99_within_50_ms() -> None:
    steps = [step(100, 100, 60), step(200, 200, 80)]
    at_80 = step(160, 160, 70)
    assert quoted([*steps, at_80], at_80) == (at_80, RULE_80)


def test_the_ledger_finds_every_message_delivered_exactly_once() -> None:
    sent = ["dm", "room", "dm"]
    recipients = {"dm": {"b"}, "room": {"b", "c", "d"}}
    got = {"b": [0, 1, 2], "c": [1], "d": [1]}
    assert ledger(sent, recipients, got) == {"sent": 3, "expected": 5, "delivered_once": 5, "lost": 0,
                                             "duplicates": 0, "strays": 0}


def test_the_ledger_counts_losses_duplicates_and_strays() -> None:
    sent = ["dm", "room"]
    recipients = {"dm": {"b"}, "room": {"b", "c"}}
    got = {"b": [0, 0, 1], "c": [0], "e": [7]}  # b got 0 twice; c got a DM not for it; nobody sent 7
    books = ledger(sent, recipients, got)
    assert (books["lost"], books["duplicates"], books["strays"]) == (1, 1, 2)


def test_a_send_never_answered_sent_is_counted_apart_never_lost() -> None:
    sent = ["dm", "dm", "room"]
    recipients = {"dm": {"b"}, "room": {"b", "c"}}
    got = {"b": [0, 2], "c": []}  # 1 was refused (or unread when the load ended); c still misses 2
    books = ledger(sent, recipients, got, acked={0, 2})
    assert (books["acked"], books["lost"], books["unacked_undelivered"], books["delivered_once"]) == (2, 1, 1, 2)
