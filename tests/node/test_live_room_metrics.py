"""Per-room live metrics: the top rooms labelled, the rest under _other, a room leaving the top loses its
series, block reasons counted as they come but bounded."""

from __future__ import annotations

from parley.node.live.room_metrics import MAX_REASONS, RoomMetrics
from prometheus_client import CollectorRegistry


def sample(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def rooms_labelled(reg: CollectorRegistry, name: str) -> set[str]:
    return {s.labels["room"] for m in reg.collect() for s in m.samples if s.name == name}


def test_top_rooms_have_their_own_label_and_the_rest_are_other() -> None:
    reg = CollectorRegistry()
    m = RoomMetrics(reg, top_k=2)
    here = {"a": 3, "b": 2, "c": 1, "d": 1}
    m.refresh(here, totals={"a": 3, "b": 10, "c": 1, "d": 1})
    assert m.top == {"a", "b"}
    for room in ("a", "b", "c", "d"):
        m.accepted(room, masked=room == "c")
        m.delivered(room, here[room], 0.02)
        m.blocked_by(room, "banned_word")
    assert sample(reg, "parley_live_room_viewers", room="b") == 2
    assert sample(reg, "parley_live_room_viewers", room="_other") == 2
    assert sample(reg, "parley_live_room_messages_in_total", room="_other") == 2
    assert sample(reg, "parley_live_room_messages_out_total", room="a") == 3
    assert sample(reg, "parley_live_room_messages_out_total", room="_other") == 2
    assert sample(reg, "parley_live_room_masked_total", room="_other") == 1
    assert sample(reg, "parley_live_room_blocked_total", room="_other", reason="banned_word") == 2
    assert sample(reg, "parley_live_room_delivery_seconds_count", room="_other") == 2
    assert rooms_labelled(reg, "parley_live_room_messages_in_total") == {"a", "b", "_other"}


def test_a_room_leaving_the_top_loses_its_series() -> None:
    reg = CollectorRegistry()
    m = RoomMetrics(reg, top_k=1)
    m.refresh({"a": 5, "b": 1}, {"a": 5, "b": 1})
    m.accepted("a", masked=False)
    m.blocked_by("a", "flooding")
    m.blocked_by("a", "Not A Code")  # reason "other"
    m.delivered("a", 5, 0.01)
    m.refresh({"a": 1, "b": 6}, {"a": 1, "b": 6})
    assert m.top == {"b"}
    for name in ("parley_live_room_viewers", "parley_live_room_messages_in_total",
                 "parley_live_room_messages_out_total", "parley_live_room_delivery_seconds_count",
                 "parley_live_room_blocked_total"):
        assert "a" not in rooms_labelled(reg, name), name
    m.accepted("a", masked=False)  # counted under _other from now on
    assert sample(reg, "parley_live_room_messages_in_total", room="_other") == 1
    assert sample(reg, "parley_live_room_viewers", room="_other") == 1


def test_block_reasons_are_taken_as_they_come_but_bounded() -> None:
    reg = CollectorRegistry()
    m = RoomMetrics(reg, top_k=0)
    m.blocked_by("a", "a_rule_merged_later")
    m.blocked_by("a", "Not A Code")
    assert sample(reg, "parley_live_room_blocked_total", room="_other", reason="a_rule_merged_later") == 1
    assert sample(reg, "parley_live_room_blocked_total", room="_other", reason="other") == 1
    for i in range(MAX_REASONS + 5):
        m.blocked_by("a", f"code_{i}")
    reasons = {s.labels["reason"] for mf in reg.collect() for s in mf.samples
               if s.name == "parley_live_room_blocked_total"}
    assert len(reasons) == MAX_REASONS + 1  # and "other"


def test_k_zero_labels_nothing_but_other() -> None:
    reg = CollectorRegistry()
    m = RoomMetrics(reg, top_k=0)
    m.refresh({"a": 2}, {"a": 2})
    m.delivered("a", 2, None)
    assert rooms_labelled(reg, "parley_live_room_messages_out_total") == {"_other"}
    assert sample(reg, "parley_live_room_delivery_seconds_count", room="_other") == 0
