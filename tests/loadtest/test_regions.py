"""The regions benchmark's pure parts (loadtest/regions.py): its cases cross the gateway where they say, share
one DM homed in one region, the stopwatch times the sender's ack and the receiver's own copy, and the table
and records carry every (delay, case)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from parley.loadtest import regions
from parley.loadtest.regions import CASES, Case, Samples, Stopwatch


def test_each_case_crosses_the_gateway_where_its_name_says() -> None:
    assert {c.name: c.crossings for c in CASES} == {
        "same-region": "nothing", "cross-home-send": "delivery", "cross-home-recv": "send"}
    assert Case("x", "us1", "us2", "eu").crossings == "send and delivery"


def test_the_two_cross_region_cases_share_one_eu_homed_dm() -> None:
    assert regions.dms() == {("eu1", "eu2"): "eu", ("eu1", "us1"): "eu"}
    assert CASES[1].dm == CASES[2].dm == ("eu1", "us1")
    assert [regions.NODE[regions.region_of(u)] for u in ("eu1", "eu2", "us1")] == [0, 0, 1]


def test_dms_refuse_cases_that_home_one_dm_in_two_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regions, "CASES", (Case("a", "eu1", "us1", "eu"), Case("b", "us1", "eu1", "us")))
    with pytest.raises(ValueError, match="homed in eu"):
        regions.dms()


def frame(watch: Stopwatch, tag: str, f: dict[str, object], now: int, kind: str | None = None) -> None:
    watch.on_frame(SimpleNamespace(tag=tag), kind or str(f["type"]), f, now)  # type: ignore[arg-type]


def test_the_stopwatch_times_the_ack_and_the_receivers_copy_and_is_done_when_both_came() -> None:
    watch = Stopwatch()
    watch.expect("c-1", "us1", now=1_000)
    frame(watch, "eu1", {"type": "msg", "body": "c-1"}, 1_500)  # the sender's own copy: not the delivery
    frame(watch, "us1", {"type": "msg", "body": "c-0"}, 1_600)  # an earlier message
    assert not watch.done.is_set()
    frame(watch, "us1", {"type": "msg", "body": "c-1"}, 4_000)  # a delivery may come before the ack
    assert watch.delivered_ns == 3_000 and not watch.done.is_set()
    frame(watch, "eu1", {"type": "ack", "cid": "c-1"}, 9_000)
    assert (watch.ack_ns, watch.delivered_ns, watch.done.is_set()) == (8_000, 3_000, True)

    watch.expect("c-2", "us1", now=10_000)
    assert (watch.ack_ns, watch.delivered_ns, watch.done.is_set()) == (None, None, False)
    frame(watch, "us1", {"type": "msg", "body": "c-2"}, 12_000, kind="duplicate")  # not a new arrival
    frame(watch, "eu1", {"type": "error", "ref": "c-2", "code": "bus_unavailable"}, 13_000)
    assert watch.done.is_set() and watch.refused is not None and watch.delivered_ns is None


def test_the_table_and_the_records_carry_every_delay_and_case() -> None:
    samples = Samples(delivery_ns=[i * 1_000_000 for i in range(1, 101)], ack_ns=[2_000_000] * 100)
    rows = [regions.case_results(d, c, samples) for d in (0.0, 40.0) for c in CASES]
    assert [(r["gateway_delay_ms"], r["case"]) for r in rows] == [(d, c.name) for d in (0.0, 40.0) for c in CASES]
    cross = rows[5]
    assert (cross["sender_region"], cross["receiver_region"], cross["home_region"], cross["crosses"]) == (
        "us", "eu", "eu", "send")
    assert (cross["delivery"]["n"], cross["delivery"]["p50_ms"], cross["ack"]["p99_ms"]) == (100, 50.0, 2.0)
    lines = regions.table(rows)
    assert len(lines) == 1 + len(rows)
    assert "40 ms" in lines[-1] and "cross-home-recv" in lines[-1] and "50.00" in lines[-1]


def test_the_defaults_are_two_delays_of_200_messages_recorded_in_regions_jsonl() -> None:
    args, _ = regions.parse_args(["--no-save"])
    assert (args.delays_ms, args.messages) == ([0.0, 40.0], 200)
    _, rec = regions.parse_args(["--record", "--allow-dirty"])  # make bench-regions
    assert str(rec.out).endswith("loadtest/results/regions.jsonl")
