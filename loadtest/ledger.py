"""Which acknowledged messages each recipient still owes us, and what arrived wrong: the load
harness's loss accounting.

A message counts as **lost** when it was acknowledged (SENT, so durable) and a recipient that has
been connected and synced for ``loss_timeout`` seconds since the ack still has not received it:
a synced device holds everything up to now (protocol §8), so a missing message will not come by
itself. A recipient that is offline, or reconnecting, is not yet owed anything: its next sync brings
the message, and its clock restarts when it is synced again.

Protocol v2 ids are comparable only within a conversation, and cursors are opaque, so everything here
is per conversation: a recipient's start ("from now") is, per conversation, the newest id it had then
(``start``), and each delivery is judged against the recipient's ``prev`` chains (``harness.chains``):
new, resent after a reconnect (dropped, allowed), duplicate or past a gap (counted).

Deliveries can overtake their own ack (the recipient's node may be faster than the sender's), so an
early delivery is remembered until the ack arrives. Pure: no clock (``now`` is passed in), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from parley.loadtest.harness.chains import Chains, Verdict

Key = tuple[str, str, int]  # recipient, conversation, message id


@dataclass
class Ledger:
    loss_timeout: float = 10.0
    owed: dict[Key, tuple[float, str]] = field(default_factory=dict)  # -> (acked at, kind)
    early: set[Key] = field(default_factory=set)  # delivered before the sender saw its ack
    synced_since: dict[str, float | None] = field(default_factory=dict)  # recipient -> synced since (None: away)
    floor: dict[str, dict[str, int]] = field(default_factory=dict)  # recipient -> conversation -> id at its start
    chains: dict[str, Chains] = field(default_factory=dict)  # recipient -> its prev chains
    acked: int = 0
    expected: int = 0
    delivered: int = 0
    lost: dict[str, int] = field(default_factory=dict)  # kind -> count
    wrong: dict[str, int] = field(default_factory=dict)  # "gap" / "duplicate" / "resent" -> count

    def start(self, user: str, floors: Mapping[str, int]) -> None:
        """``user``'s first connect starts "from now": per conversation, messages up to ``floors[conv]``
        (its newest id then) are not owed to it."""
        self.floor[user] = dict(floors)
        for key in [k for k in self.owed if k[0] == user and k[2] <= floors.get(k[1], 0)]:
            del self.owed[key]
            self.expected -= 1

    def chain(self, user: str) -> Chains:
        return self.chains.setdefault(user, Chains())

    def online(self, user: str, now: float) -> None:
        """``user``'s device is connected and synced (everything up to ``now`` is in its hands)."""
        self.synced_since[user] = now

    def away(self, user: str) -> None:
        self.synced_since[user] = None

    def _before_start(self, user: str, conv: str, msg_id: int) -> bool:
        return msg_id <= self.floor.get(user, {}).get(conv, 0)

    def on_ack(self, recipients: list[str], conv: str, msg_id: int, kind: str, now: float) -> None:
        """A send was acknowledged; ``recipients`` are the members this run is watching (not the sender)."""
        self.acked += 1
        for user in recipients:
            if user not in self.synced_since or self._before_start(user, conv, msg_id):
                continue  # not a client of this run (not spawned yet, or another worker's), or before its start
            self.expected += 1
            key = (user, conv, msg_id)
            if key in self.early:
                self.early.discard(key)
                self.delivered += 1
            else:
                self.owed[key] = (now, kind)

    def on_delivery(self, user: str, conv: str, msg_id: int, prev: int, own: bool = False) -> Verdict:
        """A ``msg`` frame reached ``user``: judged on its chain; only a new one from someone else
        (``own``: the echo of the user's own send) pays a debt."""
        verdict = self.chain(user).judge(conv, msg_id, prev)
        if verdict != "new":
            self.wrong[verdict] = self.wrong.get(verdict, 0) + 1
        if own or verdict in ("resent", "duplicate") or self._before_start(user, conv, msg_id):
            return verdict
        key = (user, conv, msg_id)
        if self.owed.pop(key, None) is not None:
            self.delivered += 1
        else:
            self.early.add(key)
        return verdict

    def overdue(self, now: float, final: bool = False) -> list[tuple[str, int, str]]:
        """Messages now counted lost (and forgotten, so each is reported once). ``final``: the run is
        over; owed to a recipient that is synced, however recently, is lost too (nothing more will come
        after the settle time the caller has waited)."""
        out = []
        for (user, conv, msg_id), (acked_at, kind) in list(self.owed.items()):
            since = self.synced_since.get(user)
            if since is None:
                continue
            if final or now - max(acked_at, since) >= self.loss_timeout:
                del self.owed[(user, conv, msg_id)]
                self.lost[kind] = self.lost.get(kind, 0) + 1
                out.append((user, msg_id, kind))
        return out

    def owed_to_online(self) -> int:
        return sum(1 for (user, _c, _id) in self.owed if self.synced_since.get(user) is not None)

    def owed_to_away(self) -> int:
        return sum(1 for (user, _c, _id) in self.owed if self.synced_since.get(user) is None)

    def summary(self) -> dict[str, int]:
        return {"acked": self.acked, "expected_deliveries": self.expected, "delivered": self.delivered,
                "lost": sum(self.lost.values()), **{f"lost_{k}": v for k, v in sorted(self.lost.items())},
                "gaps": self.wrong.get("gap", 0), "duplicates": self.wrong.get("duplicate", 0),
                "resent": self.wrong.get("resent", 0),
                "owed_to_online": self.owed_to_online(), "owed_to_offline": self.owed_to_away()}


def merge(summaries: list[Mapping[str, int]]) -> dict[str, int]:
    """The ledgers of several Locust workers as one: every count summed (each worker owns whole cells, so no
    message is counted by two)."""
    out: dict[str, int] = {}
    for summary in summaries:
        for key, value in summary.items():
            out[key] = out.get(key, 0) + int(value)
    return out


def verdict(ledger: Mapping[str, int], workers: int = 1, missing: int = 0) -> tuple[bool, str]:
    """Whether the run kept its promise (nothing acked lost, no gap or duplicate, something delivered, every
    worker's ledger counted), and the line that says so."""
    lost, gaps, dups = ledger.get("lost", 0), ledger.get("gaps", 0), ledger.get("duplicates", 0)
    ok = lost == 0 and gaps == 0 and dups == 0 and missing == 0 and ledger.get("delivered", 0) > 0
    whose = f"{workers} worker{'s' if workers != 1 else ''}" + (f", {missing} never reported" if missing else "")
    return ok, (f"parley ledger ({whose}): acked {ledger.get('acked', 0)}, expected deliveries "
                f"{ledger.get('expected_deliveries', 0)}, delivered {ledger.get('delivered', 0)}, lost {lost}, gaps "
                f"{gaps}, duplicates {dups}, owed to offline {ledger.get('owed_to_offline', 0)}: "
                f"{'OK' if ok else 'FAILED'}")
