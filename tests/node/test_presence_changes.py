"""A node's presence changes numbered per partition, its beats, and its reports (ADR 0049)."""

from __future__ import annotations

from parley.node.presence_changes import BATCH, ChangeNumbers

from parley import wire


def test_changes_are_numbered_per_partition_and_a_beat_says_the_last_number():
    numbers = ChangeNumbers("n1", 7, partitions=3, every=1000)
    assert numbers.change(1, "u", "d", True, 10) == wire.DeviceHeld("n1", 7, 1, "u", "d", True, 10)
    assert numbers.change(1, "u", "d", False, 20).seq == 2
    assert numbers.change(2, "v", "d", True, 30).seq == 1
    assert numbers.beat(40) == [wire.StillHeld("n1", 7, 0, 40), wire.StillHeld("n1", 7, 2, 40),
                                wire.StillHeld("n1", 7, 1, 40)]


def test_each_partitions_report_is_due_once_every_so_many_beats_spread_over_them():
    numbers = ChangeNumbers("n1", 7, partitions=16, every=60)
    due = [[p for p, beat in enumerate(numbers.beat(at)) if beat is None] for at in range(120)]
    assert sorted(p for beat in due for p in beat) == sorted(list(range(16)) * 2)  # each twice in 120 beats
    assert max(map(len, due)) == 1  # one partition a beat at most: never all at once


def test_a_report_is_cut_into_parts_that_say_their_number_and_the_last_change():
    numbers = ChangeNumbers("n1", 7, partitions=1, every=60)
    numbers.change(0, "u", "d", True, 10)
    devices = [(f"u{i}", "d") for i in range(BATCH + 1)]
    parts = numbers.report(0, devices, 50)
    assert [(r.part, r.parts, r.seq, len(r.devices)) for r in parts] == [(0, 2, 1, BATCH), (1, 2, 1, 1)]
    assert numbers.report(0, [], 60) == [wire.HeldReport("n1", 7, 1, 60, (), 0, 1)]  # nothing held: still said
