"""discovery/live_rooms.py: the page's top live rooms from the nodes' per-room series — summed across nodes,
rates over the last step, p99 from bucket increases, _other apart, a room new to a node's top counted from
0, and the per-room series kept out of the node's own totals (a room leaving the top is no restart)."""

from __future__ import annotations

from parley.discovery.live_rooms import live_rooms
from parley.discovery.traffic import History, parse

ROOM_A, ROOM_B = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


def page(rooms: dict[str, tuple[int, int, int, int, int]], delivered: int = 0) -> str:
    """room → (viewers, in, out, blocked, deliveries within 0.1 s); one slow delivery (1–2.5 s) per 10 fast."""
    lines = [f"parley_node_messages_delivered_total {delivered}"]
    for room, (viewers, n_in, n_out, blocked, fast) in rooms.items():
        lines += [f'parley_live_room_viewers{{room="{room}"}} {viewers}',
                  f'parley_live_room_messages_in_total{{room="{room}"}} {n_in}',
                  f'parley_live_room_messages_out_total{{room="{room}"}} {n_out}',
                  f'parley_live_room_blocked_total{{room="{room}",reason="banned_word"}} {blocked}',
                  f'parley_live_room_blocked_total{{room="{room}",reason="flooding"}} {blocked}',
                  f'parley_live_room_delivery_seconds_bucket{{room="{room}",le="0.1"}} {fast}',
                  f'parley_live_room_delivery_seconds_bucket{{room="{room}",le="1.0"}} {fast}',
                  f'parley_live_room_delivery_seconds_bucket{{room="{room}",le="2.5"}} {fast + fast // 10}',
                  f'parley_live_room_delivery_seconds_bucket{{room="{room}",le="+Inf"}} {fast + fast // 10}']
    return "\n".join(lines) + "\n"


def test_rooms_add_up_across_nodes_and_other_stays_apart() -> None:
    h = History()
    h.record("n1", parse(page({ROOM_A: (5, 10, 50, 1, 0), "_other": (2, 0, 0, 0, 0)}), 0.0))
    h.record("n2", parse(page({ROOM_A: (3, 0, 30, 0, 0)}), 0.0))
    h.record("n1", parse(page({ROOM_A: (6, 30, 170, 3, 1000), ROOM_B: (9, 2, 18, 0, 0),
                               "_other": (2, 4, 8, 0, 0)}), 2.0))
    h.record("n2", parse(page({ROOM_A: (4, 0, 110, 0, 100)}), 2.0))
    view = live_rooms(h, ["n1", "n2"])
    assert [r["room"] for r in view["rooms"]] == [ROOM_A, ROOM_B]  # by viewers
    a, b = view["rooms"]
    assert (a["viewers"], a["in_per_s"], a["out_per_s"], a["blocked_per_s"]) == (10, 10, 100, 2)
    assert 1000 < a["p99_ms"] <= 2500  # 110 slow of 1210
    assert (b["viewers"], b["in_per_s"], b["out_per_s"]) == (9, 1, 9)  # new to n1's top: from 0
    assert view["others"] == {"room": "_other", "viewers": 2, "in_per_s": 2, "out_per_s": 4, "blocked_per_s": 0,
                              "masked_per_s": 0, "p99_ms": None}


def test_nothing_before_two_good_scrapes_and_a_failed_scrape_starts_over() -> None:
    h = History()
    h.record("n1", parse(page({ROOM_A: (5, 10, 50, 0, 0)}), 0.0))
    assert live_rooms(h, ["n1"]) == {"rooms": [], "others": None}
    h.record("n1", None)
    h.record("n1", parse(page({ROOM_A: (5, 20, 60, 0, 0)}), 4.0))
    assert live_rooms(h, ["n1", "gone"])["rooms"] == []


def test_a_room_leaving_a_nodes_top_is_not_a_restart_of_the_node() -> None:
    h = History()
    h.record("n1", parse(page({ROOM_A: (5, 10, 50, 0, 0)}, delivered=100), 0.0))
    h.record("n1", parse(page({ROOM_B: (5, 1, 5, 0, 0)}, delivered=110), 2.0))
    assert h.rate("n1", "parley_node_messages_delivered_total") == 5  # not 55: no restart seen
    reading = h.latest("n1")
    assert reading is not None and not any(name.startswith("parley_live_room_") for name in reading.values)
