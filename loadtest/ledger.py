"""Which acknowledged messages each recipient still owes us: the load harness's loss accounting.

A message counts as **lost** when it was acknowledged (SENT, so durable) and a recipient that has
been connected and synced for ``loss_timeout`` seconds since the ack still has not received it:
a synced device holds everything up to now (protocol §8), so a missing message will not come by
itself. A recipient that is offline, or reconnecting, is not yet owed anything: its next sync brings
the message, and its clock restarts when it is synced again.

Deliveries can overtake their own ack (the recipient's node may be faster than the sender's), so an
early delivery is remembered until the ack arrives. Pure: no clock (``now`` is passed in), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ledger:
    loss_timeout: float = 10.0
    owed: dict[tuple[str, int], tuple[float, str]] = field(default_factory=dict)  # (user, id) -> (acked at, kind)
    early: set[tuple[str, int]] = field(default_factory=set)  # delivered before the sender saw its ack
    synced_since: dict[str, float | None] = field(default_factory=dict)  # recipient -> synced since (None: away)
    floor: dict[str, int] = field(default_factory=dict)  # recipient -> the cursor it started from
    acked: int = 0
    expected: int = 0
    delivered: int = 0
    lost: dict[str, int] = field(default_factory=dict)  # kind -> count

    def start(self, user: str, cursor: int) -> None:
        """``user``'s first connect starts "from now", at ``cursor``: older messages are not owed to it."""
        self.floor[user] = cursor
        for key in [k for k in self.owed if k[0] == user and k[1] <= cursor]:
            del self.owed[key]
            self.expected -= 1

    def online(self, user: str, now: float) -> None:
        """``user``'s device is connected and synced (everything up to ``now`` is in its hands)."""
        self.synced_since[user] = now

    def away(self, user: str) -> None:
        self.synced_since[user] = None

    def on_ack(self, recipients: list[str], msg_id: int, kind: str, now: float) -> None:
        """A send was acknowledged; ``recipients`` are the members this run is watching (not the sender)."""
        self.acked += 1
        for user in recipients:
            if user not in self.synced_since or msg_id <= self.floor.get(user, 0):
                continue  # not a client of this run (not spawned yet, or another worker's), or before its start
            self.expected += 1
            key = (user, msg_id)
            if key in self.early:
                self.early.discard(key)
                self.delivered += 1
            else:
                self.owed[key] = (now, kind)

    def on_delivery(self, user: str, msg_id: int) -> None:
        key = (user, msg_id)
        if self.owed.pop(key, None) is not None:
            self.delivered += 1
        else:
            self.early.add(key)

    def overdue(self, now: float, final: bool = False) -> list[tuple[str, int, str]]:
        """Messages now counted lost (and forgotten, so each is reported once). ``final``: the run is
        over; owed to a recipient that is synced, however recently, is lost too (nothing more will come
        after the settle time the caller has waited)."""
        out = []
        for (user, msg_id), (acked_at, kind) in list(self.owed.items()):
            since = self.synced_since.get(user)
            if since is None:
                continue
            if final or now - max(acked_at, since) >= self.loss_timeout:
                del self.owed[(user, msg_id)]
                self.lost[kind] = self.lost.get(kind, 0) + 1
                out.append((user, msg_id, kind))
        return out

    def owed_to_online(self) -> int:
        return sum(1 for (user, _id) in self.owed if self.synced_since.get(user) is not None)

    def owed_to_away(self) -> int:
        return sum(1 for (user, _id) in self.owed if self.synced_since.get(user) is None)

    def summary(self) -> dict[str, int]:
        return {"acked": self.acked, "expected_deliveries": self.expected, "delivered": self.delivered,
                "lost": sum(self.lost.values()), **{f"lost_{k}": v for k, v in sorted(self.lost.items())},
                "owed_to_online": self.owed_to_online(), "owed_to_offline": self.owed_to_away()}
