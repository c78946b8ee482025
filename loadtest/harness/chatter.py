"""DM senders that keep going through a bus outage, and the send stall measured from their acks.

A ``Chatter`` sends numbered messages into one conversation, one at a time, and resends a message
with the same client id when the node answers ``bus_unavailable`` (an election) or does not answer in
time — exactly what a client does; the dedup id makes the resend safe. Every ack is recorded with
the time it came, so ``stall_around`` can say how long no send was acknowledged around an instant
(a server kill). Used by the leader-kill test and ``loadtest/leader_kill.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from parley.tools.client import ApiError, Device

BUS_UNAVAILABLE = "bus_unavailable"


@dataclass
class Chatter:
    sender: Device
    receiver: Device
    conv: str
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    acked: list[tuple[float, int, str]] = field(default_factory=list)  # (monotonic time, id, body)
    refusals: Counter[str] = field(default_factory=Counter)  # error code (or "timeout") → count

    async def run(self, stop: asyncio.Event, pause_s: float = 0.01) -> None:
        i = 0
        while not stop.is_set():
            body = f"{self.tag}-{i}"
            ack = await self._until_acked(body, cid=body)
            self.acked.append((time.monotonic(), int(ack["id"]), body))
            i += 1
            await asyncio.sleep(pause_s)

    async def _until_acked(self, body: str, cid: str) -> dict[str, Any]:
        while True:
            try:
                return await self.sender.send(self.conv, body, cid=cid)
            except ApiError as err:
                code = str(err.code or err.body.get("code") or "?")
                self.refusals[code] += 1
                if code == "rate_limited":
                    await asyncio.sleep(float(err.body.get("retry_after_ms", 100)) / 1000)
                elif code != BUS_UNAVAILABLE:
                    raise
                else:
                    await asyncio.sleep(0.05)
            except TimeoutError:
                self.refusals["timeout"] += 1

    def acked_after(self, at: float) -> int:
        return sum(1 for t, _, _ in self.acked if t > at)


def stall_around(ack_times: list[float], at: float, lead_s: float = 1.0) -> tuple[float, float]:
    """(stall, resumed): the longest time with no ack among the gaps that end after ``at`` and start no
    earlier than ``lead_s`` before it, and how long after ``at`` acks came again at the end of that gap."""
    times = sorted(ack_times)
    best = (float("inf"), float("inf"))
    gaps = [(later - earlier, later - at) for earlier, later in zip(times, times[1:], strict=False)
            if later > at and earlier >= at - lead_s]
    if gaps:
        best = max(gaps)
    return best
