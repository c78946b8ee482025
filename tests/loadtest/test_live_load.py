"""The live-room load tools' pure parts: the bench's books and quote rule, the scenario's shape and ledger, and
the bare viewer's frame reading (a frame split across reads is counted once). The tools themselves run tiny
against the shared cluster in tests/integration/test_live_load.py."""

from __future__ import annotations

import pytest
from parley.loadtest import live_accounting as acc
from parley.loadtest.harness import viewer
from parley.loadtest.live_event import LiveBooks, LiveEvent


def step(deliveries: int, p99: float | None, missing: int = 0, rate: float = 10.0) -> dict[str, object]:
    return {"offered_rate": rate, "viewers": 100, "sent_in_window": 10, "missing_after_drain": missing,
            "latency": {"p99_ms": p99}, "window": {"deliveries": deliveries, "deliveries_per_s": deliveries / 2}}


@pytest.mark.parametrize(("s", "ok"), [
    (step(1000, 20.0), True),
    (step(900, 20.0), True),  # 90% of 10 messages x 100 viewers
    (step(899, 20.0), False),
    (step(1000, 1001.0), False),
    (step(1000, None), False),  # no sample: no claim
    (step(1000, 20.0, missing=1), False),
])
def test_a_step_is_sustained_when_nearly_all_arrived_in_time_and_nothing_is_missing(s, ok) -> None:
    assert acc.sustained(s) is ok


def test_costs_are_quoted_at_the_busiest_calm_step_never_at_saturation() -> None:
    calm, busier_but_slow, broken = step(1000, 40.0, rate=5), step(1000, 600.0, rate=10), step(500, 90.0, rate=20)
    calm["window"]["deliveries_per_s"] = 400  # type: ignore[index]
    assert acc.quoted([calm, busier_but_slow, broken]) is calm
    assert acc.quoted([busier_but_slow]) is None


def test_a_failed_step_is_tried_once_more_then_the_ladder_ends() -> None:
    good, bad = step(1000, 20.0, rate=5), step(100, 20.0, rate=10)
    assert acc.next_rates([good], [5, 10, 20]) == [10, 20]
    assert acc.next_rates([good, bad], [10, 20]) == [10, 20]
    assert acc.next_rates([good, bad, bad], [10, 20]) == []
    assert acc.next_rates([good, bad, step(1000, 20.0, rate=10)], [10, 20]) == [20]


def test_every_viewer_owes_every_accepted_message_and_sampled_viewers_are_checked_by_id() -> None:
    books = acc.ledger([1, 2, 3], [3, 2, 4], {0: [1, 2, 3], 1: [1, 1, 9]})
    assert books == {"accepted": 3, "viewers": 3, "expected_deliveries": 9, "delivered": 9, "lost": 1, "surplus": 1,
                     "sampled_viewers": 2, "sampled_missing": 2, "sampled_duplicates": 1, "sampled_strays": 1}
    assert acc.ledger([1, 2], [2, 2], {0: [1, 2]})["lost"] == 0


def test_the_filter_cost_comes_from_the_newest_words_record() -> None:
    rec = {"date": "d", "git": {"commit": "abc"}, "results": {"entries": 10_000, "cases": {
        "latin_short_clean": {"judge_us": 28.7}, "korean_short_clean": {"judge_us": 71.3}}}}
    cost = acc.filter_cost(rec)
    assert (cost["entries"], cost["judge_us_latin_short"], cost["judge_us_korean_short"]) == (10_000, 28.7, 71.3)
    assert acc.filter_cost(None) == {"source": None}


def test_the_live_event_has_a_hot_room_small_rooms_and_a_tenfold_burst() -> None:
    sc = LiveEvent(hot_share=0.5, chatter_every=3, chat_rate=0.5, burst_at=0.25, burst_share=0.125, burst_factor=10)
    rooms = ["hot", "a", "b"]
    assert [sc.room_of(i, 8, rooms) for i in range(8)] == ["hot"] * 4 + ["a", "b", "a", "b"]
    assert [sc.chats(i) for i in range(4)] == [True, False, False, True]
    assert [sc.rate_at(t, 40) for t in (9.9, 10, 14.9, 15)] == [0.5, 5.0, 5.0, 0.5]


def test_a_chatters_wait_does_not_step_over_the_burst() -> None:
    sc = LiveEvent(chat_rate=0.5, burst_at=0.25, burst_share=0.125, burst_factor=10)  # burst 10-15 s of 40
    assert sc.wait_s(2.0, 40, 1.0) == pytest.approx(2.0)  # calm: 1 / 0.5
    assert sc.wait_s(11.0, 40, 1.0) == pytest.approx(0.2)  # burst: 1 / 5
    # drawn at 9 s: 0.5 of the draw is spent on the calm second before the burst, the rest at 5/s inside it
    assert sc.wait_s(9.0, 40, 1.0) == pytest.approx(1.0 + 0.5 / 5.0)
    # a draw larger than the whole burst (1 calm second = 0.5, 5 burst seconds = 25) comes out after it, calm
    assert sc.wait_s(9.0, 40, 26.0) == pytest.approx(6.0 + 0.5 / 0.5)
    assert sc.wait_s(20.0, 40, 3.0) == pytest.approx(6.0)


def test_the_live_books_count_what_each_viewer_of_a_room_is_owed() -> None:
    books = LiveBooks()
    for v, room in (("v1", "hot"), ("v2", "hot"), ("v3", "small"), ("v4", "small")):
        books.watching(v, room)
    for room, id in (("hot", 1), ("hot", 2), ("small", 3)):
        books.on_ack(room, id)
    for v, id in (("v1", 1), ("v1", 2), ("v1", 2), ("v2", 1), ("v3", 3), ("v3", 99)):  # 99: someone else's
        books.on_message(v, id)
    books.on_dropped("v4")  # let go as a slow reader: owed nothing more
    assert books.owed() == {"v1": 0, "v2": 1, "v3": 0}
    assert books.summary() == {"acked": 3, "expected_deliveries": 5, "delivered": 4, "lost": 1, "gaps": 0,
                               "duplicates": 1, "dropped_viewers": 1, "viewers": 4}


def frame(text: bytes) -> bytes:
    n = len(text)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + text


def test_server_frames_come_out_whole_and_a_partial_one_waits() -> None:
    a, b = frame(b'{"type":"live_msg","id":1}'), frame(b"x" * 300)
    buf = bytearray(a + b + a[:5])
    assert viewer.server_frames(buf) == [(1, a[2:]), (1, b[4:])]
    assert bytes(buf) == a[:5]


def test_a_client_frame_is_masked_and_unmasks_to_the_text() -> None:
    for text in ("hi", "y" * 200, "z" * 70_000):
        f = viewer.client_frame(text)
        n = f[1] & 0x7F
        at = 2 if n < 126 else 4 if n == 126 else 10
        mask, body = f[at:at + 4], f[at + 4:]
        assert f[1] & 0x80 and bytes(c ^ mask[i % 4] for i, c in enumerate(body)).decode() == text


class FakeLoop:
    def create_future(self) -> object:
        return None


@pytest.mark.parametrize("cut", [1, 5, 11, 17, 20, 30])
def test_a_counting_viewer_counts_a_marker_split_across_reads_once(cut: int, monkeypatch) -> None:
    monkeypatch.setattr(viewer.asyncio, "get_running_loop", lambda: FakeLoop())
    v = viewer.Viewer("h", "/ws", "t", "room", sampled=False)
    v._state = "watching"
    stream = frame(b'{"type":"live_msg","id":1}') * 3 + frame(b'{"type":"live_dropped","room":"r"}')
    for i in range(0, len(stream), cut):
        v.data_received(stream[i:i + cut])
    assert (v.tally.messages, v.tally.dropped) == (3, 1)


def live_record(viewers: int, quoted: bool, date: str = "2026-12-03T00:00:00+00:00") -> dict[str, object]:
    q = {"offered_rate": 5.0, "messages_per_s": 5.0, "deliveries_per_s": 10_000.0, "p50_ms": 50.0, "p99_ms": 200.0,
         "cpu_ms_per_delivery": 0.03, "cpu_ms_per_delivery_by_process": {"node1": 0.01, "node2": 0.01,
                                                                         "nats-server": 0.003},
         "cpu_ms_per_message": {"nats-server": 0.6, "archiver": 0.5}, "cpu_pct": {}}
    return {"date": date, "commit": "abcdef1234567", "clean_tree": True, "note": "shared box",
            "machine": {"cpu_count": 2, "loadavg_at_start": [1.0, 2.0, 3.0]},
            "results": {"viewers": viewers, "viewers_per_node": [viewers // 2, viewers // 2],
                        "quoted": q if quoted else None, "max_sustained": None,
                        "ledger": {"lost": 0, "expected_deliveries": 100},
                        "filter_cost": {"judge_us_latin_short": 30.0}}}


def test_the_1m_viewer_plan_is_arithmetic_on_the_biggest_quotable_run() -> None:
    from parley.loadtest import live_report

    recs = [live_record(2_000, True), live_record(10_000, False), live_record(500, True)]
    assert live_report.quotable(recs) is recs[0]  # the most viewers among runs with a quoted step
    rows = {what: (count, how) for what, count, how in live_report.plan(recs[0], live_report.Event())}
    # 1M viewers x 200 msg/s = 200M deliveries/s x 0.02 ms (nodes) = 4,000 cores / 0.6 -> 6,667 nodes
    assert rows["deliveries/s"][0].startswith("200,000,000 ")
    assert rows["edge nodes (1 core each)"][0] == "**6,667**"
    # the bus: one copy per node and the archiver; 0.6 ms per message over 2 nodes + 1 = 0.2 ms per copy
    assert rows["NATS fan-out"][0].startswith(f"{200 * 6_668:,} msg/s out")
    assert "0.2000 ms per copy" in rows["NATS fan-out"][1] and "at the quoted step" in rows["NATS fan-out"][1]
    assert rows["edge nodes if each viewer is sent at most 20 msg/s"][0] == "667"  # a tenth of the deliveries
    # few viewers: the connection cap sets the floor (50,000 per node)
    small = {w: c for w, c, _ in live_report.plan(recs[0], live_report.Event(viewers=1_000_000, messages_per_s=0.1))}
    assert small["edge nodes (1 core each)"] == "**20**"
    assert live_report.plan_text([recs[1]]).startswith("No run")


def test_per_delivery_costs_are_the_slope_over_sustained_steps_so_fixed_costs_stay_out() -> None:
    from parley.loadtest import live_report

    def at(deliveries: float, node_pct: float, p99: float = 20.0) -> dict[str, object]:
        s = step(int(deliveries * 2), p99)
        s["viewers"], s["sent_in_window"] = 1, int(deliveries * 2)
        s["window"].update(deliveries_per_s=deliveries, wall_s=2.0,  # type: ignore[union-attr]
                           cpu_pct={"node1": node_pct / 2, "node2": node_pct / 2, "nats-server": 5.0})
        return s

    # 10% of a core idle + 0.01 ms per delivery: 10k/s -> 20%, 30k/s -> 40%; a failed step is left out
    steps = [at(10_000, 20.0), at(30_000, 40.0), at(50_000, 95.0, p99=2_000.0)]
    assert live_report.marginal(steps, "delivery", lambda k: k.startswith("node")) == pytest.approx(0.01)
    assert live_report.marginal(steps, "message", lambda k: k == "nats-server") is None  # flat: not a cost
    assert live_report.slope([(1.0, 2.0)]) is None and live_report.slope([(1.0, 2.0), (2.0, 1.0)]) is None
