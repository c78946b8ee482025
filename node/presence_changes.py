"""The numbers a node gives its presence changes, and its reports. Pure: no I/O; times are passed in.

Per presence partition the node numbers the arrivals and departures it tells of 1, 2, 3 … (``wire.DeviceHeld``),
and each beat says the last number given (``wire.StillHeld``), so a worker that missed a change sees it and asks
for the partition's report (``wire.HeldReport``): every device of the partition held here, as of that number,
cut into parts of ``BATCH``. The numbers start again with each incarnation of the node (``inc``: its start, unix
µs, so a restart's is higher). Besides the asked ones, each partition's report goes out once every ``every``
beats by itself, the partitions spread over those beats: a worker whose ask was lost (or refused) is
corrected within that many beats, whatever else happened (ADR 0049).
"""

from __future__ import annotations

from collections.abc import Iterable

from parley import wire

BATCH = 2000  # devices per report message, well under NATS's max payload


class ChangeNumbers:
    def __init__(self, node: str, inc: int, partitions: int, every: int) -> None:
        self.node, self.inc, self.every = node, inc, every
        self._seq = [0] * partitions
        self._beats = 0

    def change(self, partition: int, user: str, device: str, here: bool, at: int) -> wire.DeviceHeld:
        self._seq[partition] += 1
        return wire.DeviceHeld(self.node, self.inc, self._seq[partition], user, device, here, at)

    def beat(self, at: int) -> list[wire.StillHeld | None]:
        """One beat: per partition its ``StillHeld``, or None where its report is due this beat instead."""
        self._beats += 1
        n, every = len(self._seq), self.every
        return [None if (self._beats + p * every // n) % every == 0 else
                wire.StillHeld(self.node, self.inc, seq, at) for p, seq in enumerate(self._seq)]

    def report(self, partition: int, devices: Iterable[tuple[str, str]], at: int) -> list[wire.HeldReport]:
        held = list(devices)
        seq = self._seq[partition]
        starts = range(0, len(held), BATCH) if held else range(1)
        return [wire.HeldReport(self.node, self.inc, seq, at, tuple(held[s:s + BATCH]), i, len(starts))
                for i, s in enumerate(starts)]
