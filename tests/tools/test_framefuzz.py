"""The frame fuzzer's planner: the same seed plans the same messages; the plan covers what it promises."""

from __future__ import annotations

import json
import random

from parley.tools.framefuzz import BINARY, FRAME_TYPES, RAW_TEXT, TEXT, Target, plan

TARGET = Target(token="t.o.k", convs=("dm.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb", "g.cccccccccccccccc"),
                users=("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"), cursor="c1.AA.bb", ids=(65, 129), max_frame_bytes=4096)


def types_planned(episodes) -> set[str]:
    found = set()
    for ep in episodes:
        for wire in ep.wires:
            try:
                frame = json.loads(wire.data)
            except (ValueError, RecursionError):  # not JSON, or nested deeper than json reads
                continue
            if isinstance(frame, dict) and isinstance(frame.get("type"), str):
                found.add(frame["type"])
    return found


def test_a_seed_plans_the_same_messages_every_time():
    first, again = plan(random.Random(7), TARGET, 2000), plan(random.Random(7), TARGET, 2000)
    assert first == again and first != plan(random.Random(8), TARGET, 2000)


def test_a_plan_is_bounded_and_mixes_every_kind_of_message():
    episodes = plan(random.Random(1), TARGET, 3000)
    wires = [w for ep in episodes for w in ep.wires]
    assert 3000 <= len(wires) < 3000 + 130  # the last episode may end in a flood
    assert {w.kind for w in wires} == {TEXT, BINARY, RAW_TEXT}
    assert set(FRAME_TYPES) <= types_planned(episodes)
    assert any(not ep.hello for ep in episodes) and any(len(w.data) > TARGET.max_frame_bytes for w in wires)
    # on a connection that said hello, only the last message may be over the limit (it is meant to end it)
    assert all(len(w.data) <= TARGET.max_frame_bytes for ep in episodes if ep.hello for w in ep.wires if not w.ends)


def test_a_message_that_ends_the_connection_comes_last():
    for ep in plan(random.Random(3), TARGET, 3000):
        assert all(not w.ends for w in ep.wires[:-1])


def test_text_messages_are_utf8_and_raw_ones_are_not():
    wires = [w for ep in plan(random.Random(5), TARGET, 3000) for w in ep.wires]
    for w in wires:
        if w.kind == TEXT:
            w.data.decode("utf-8")
    raw = [w for w in wires if w.kind == RAW_TEXT]
    assert raw and all(w.ends for w in raw)
