"""The Locust scenario ``live-event``: chat beside a broadcast (issue 16 item 8), its shape and its books.

One hot room and ``small_rooms`` small ones. Each Locust user is one viewer: it logs in, connects, joins
its room (the first ``hot_share`` of the users the hot room, the rest the small rooms in turn) and watches;
every ``chatter_every``-th viewer also chats, at ``chat_rate`` msg/s (Poisson), except during the *score
burst*: from ``burst_at`` of the run's time for ``burst_share`` of it (counted from when the chat starts),
the rate is ``burst_factor`` times higher. Chat starts once every user of the process has joined, so each
viewer is owed every message its room accepted from then on (``LiveBooks``); Locust's ``-t`` ends the run
(bounded in users and seconds, loopback only when ``loadtest.run`` starts the cluster).

Pure: no clock (times are passed in), no I/O; ``loadtest/live_locustfile.py`` is the Locust shell around it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from typing import Any

from parley.tools.client import Api


@dataclass(frozen=True)
class LiveEvent:
    name: str = "live-event"
    users: int = 60
    spawn_rate: float = 30.0
    run_time_s: int = 40
    small_rooms: int = 4
    hot_share: float = 0.6  # of the viewers, in the hot room
    chatter_every: int = 3  # one viewer in three chats
    chat_rate: float = 0.5  # msg/s per chatter outside the burst
    burst_at: float = 0.3  # of the run time, after the chat starts
    burst_share: float = 0.25  # of the run time
    burst_factor: float = 10.0
    heartbeat_s: float = 25.0
    description: str = ("one hot room and a few small ones; a third of the viewers chat; a score burst "
                        "multiplies the chat rate by 10 for a quarter of the run")

    def room_of(self, index: int, users: int, rooms: list[str]) -> str:
        """The room of viewer ``index`` of ``users``: ``rooms[0]`` is the hot room, the others the small ones."""
        hot = max(1, round(users * self.hot_share))
        small = rooms[1:]
        return rooms[0] if index < hot or not small else small[(index - hot) % len(small)]

    def chats(self, index: int) -> bool:
        return index % self.chatter_every == 0

    def in_burst(self, since_start_s: float, run_s: float) -> bool:
        start = self.burst_at * run_s
        return start <= since_start_s < start + self.burst_share * run_s

    def rate_at(self, since_start_s: float, run_s: float) -> float:
        return self.chat_rate * (self.burst_factor if self.in_burst(since_start_s, run_s) else 1.0)

    def wait_s(self, since_start_s: float, run_s: float, exp1: float) -> float:
        """Seconds from ``since_start_s`` to a chatter's next send, given ``exp1`` drawn from Exp(1).

        The chat is a Poisson process whose rate changes at the burst's edges, so a wait drawn at the calm rate
        must not step over the burst: the draw is spent segment by segment (rate × time in each), which is the
        exact waiting time of a piecewise-constant rate. A wait drawn at 0.5/s just before a 10× burst lands
        inside it, as it would for a real crowd."""
        start = self.burst_at * run_s
        edges = [e for e in (start, start + self.burst_share * run_s) if e > since_start_s]
        t = since_start_s
        for edge in [*edges, float("inf")]:
            rate = self.rate_at(t, run_s)
            if exp1 < rate * (edge - t):
                return t + exp1 / rate - since_start_s
            exp1 -= rate * (edge - t)
            t = edge
        raise AssertionError("unreachable: the last segment has no end")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SCENARIOS = {"live-event": LiveEvent()}


def live_scenario(name: str, **overrides: object) -> LiveEvent:
    base = SCENARIOS[name]
    return replace(base, **overrides) if overrides else base  # type: ignore[arg-type]


class LiveBooks:
    """The loss ledger of live rooms: each viewer in a room is owed every id the room accepted (from this
    process's senders) while it watched; ids from elsewhere are not counted either way."""

    def __init__(self) -> None:
        self.accepted: dict[str, set[int]] = defaultdict(set)  # room -> ids acked to our senders
        self.rooms: dict[str, str] = {}  # viewer -> its room
        self.got: dict[str, set[int]] = defaultdict(set)
        self.duplicates = 0
        self.dropped: set[str] = set()  # viewers the node let go (slow): owed nothing more

    def watching(self, viewer: str, room: str) -> None:
        self.rooms[viewer] = room

    def on_ack(self, room: str, id: int) -> None:
        self.accepted[room].add(id)

    def on_message(self, viewer: str, id: int) -> None:
        if id in self.got[viewer]:
            self.duplicates += 1
        self.got[viewer].add(id)

    def on_dropped(self, viewer: str) -> None:
        self.dropped.add(viewer)

    def owed(self) -> dict[str, int]:
        """Viewer -> how many of its room's accepted ids it has not got (dropped viewers left out)."""
        return {v: len(self.accepted[r] - self.got[v]) for v, r in self.rooms.items() if v not in self.dropped}

    def summary(self) -> dict[str, int]:
        owed = self.owed()
        expected = sum(len(self.accepted[r]) for v, r in self.rooms.items() if v not in self.dropped)
        return {"acked": sum(len(ids) for ids in self.accepted.values()), "expected_deliveries": expected,
                "delivered": expected - sum(owed.values()), "lost": sum(owed.values()), "gaps": 0,
                "duplicates": self.duplicates, "dropped_viewers": len(self.dropped), "viewers": len(self.rooms)}


async def make_rooms(api: Api, roster: dict[str, Any], count: int) -> list[str]:
    """``count`` live rooms owned by the roster's first user; the hot one first."""
    owner = roster["users"][0]
    token = (await api.login(owner["name"], roster["password"], device_id=owner["device_id"]))["token"]
    rooms = []
    for i in range(count):
        made = await api.call("POST", "/v1/live", token, {"title": "hot" if i == 0 else f"small {i}",
                                                          "description": f"{roster['prefix']} live-event"})
        rooms.append(str(made["id"]))
    return rooms
