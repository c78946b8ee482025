"""Writes a node keeps for the store while it is down stay bounded, newest winning (docs/adr/0016)."""

from parley.node.unsaved import Unsaved


def test_a_failed_write_goes_back_behind_newer_entries_and_the_oldest_go_past_the_cap():
    unsaved: Unsaved[str, int] = Unsaved(cap=3)
    for device, cursor in [("a", 1), ("b", 1), ("a", 2)]:
        unsaved.put(device, cursor)
    batch = unsaved.take()
    assert batch == {"b": 1, "a": 2} and len(unsaved) == 0
    unsaved.put("a", 3)  # acked while the write was under way
    unsaved.put_back(batch)  # the store refused it
    assert unsaved.take() == {"b": 1, "a": 3}  # the newer cursor wins, nothing saved twice


def test_past_the_cap_the_oldest_entries_are_dropped_and_counted():
    unsaved: Unsaved[str, int] = Unsaved(cap=100)
    for i in range(1000):  # the store down a long while: far more devices ack than the cap
        unsaved.put(f"d{i}", i)
        assert len(unsaved) <= 100
    batch = unsaved.take()
    assert list(batch) == [f"d{i}" for i in range(900, 1000)] and unsaved.dropped == 900
    for i in range(50):
        unsaved.put(f"n{i}", i)
    unsaved.put_back(batch)  # a failed write of the full batch: the newer 50 stay, the oldest of it go
    kept = unsaved.take()
    assert len(kept) == 100 and all(f"n{i}" in kept for i in range(50)) and "d900" not in kept
