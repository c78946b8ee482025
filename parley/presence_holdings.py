"""What each node holds of a partition's devices, as the presence worker hears it. Pure: no I/O; times are passed in.

Since ADR 0049 a node tells of a device when it comes and goes (``wire.DeviceHeld``) and otherwise beats once per
partition (``wire.StillHeld``: "I still hold what I said"), never listing its devices; asked, or every few minutes,
it sends them all (``wire.HeldReport``). Per (node, partition) a ``Holding`` keeps the devices told of and the
node's change number (``seq``). The node numbers each partition's changes 1, 2, 3 … per incarnation (``inc``, the
process's start), so the worker sees what it missed:

- a change one past the last (or the first, number 1) is applied and the holding stays *synced*; any other change
  is applied too (it is true of its device) but the holding is no longer synced;
- a beat whose number is not the holding's, or a holding not synced (new to this worker: a takeover, a restart),
  asks the node for a report (at most once per ``ask_every_ms``); the report replaces what the holding had and
  syncs it;
- nothing of a live node is dropped while it is not synced: its devices stay held until a report says otherwise,
  and a device the report no longer lists is released at the last moment the holding was known complete;
- a node heard from by no message for ``timeout_ms`` (it died, or its connection did) has every device released at
  its last beat: its users go offline then, as they did when each device beat on its own; a node's new incarnation
  releases the old one's devices at once (they were closed with the old process) and an old incarnation's late
  message is ignored.
The users themselves are in the ``PresenceBook``: a user is online while a holding holds a device of theirs (its
``holders``), or while a device beat within the timeout (old nodes' ``wire.Heartbeats``, which still work).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley import wire
from parley.presence import PresenceBook, Transition


@dataclass(eq=False, slots=True)
class Holding:
    node: str
    partition: int
    inc: int
    seq: int = 0  # the last change heard
    synced: bool = False  # what we hold is what the node holds as of ``seq``
    heard_at: int = 0  # the node's latest message, its clock (unix ms)
    sure_at: int = 0  # the latest message that found the holding synced
    asked_at: int | None = None
    # user → the device here, or a set of them from the second on (a set of one is 0.2 KB a connection)
    devices: dict[str, str | set[str]] = field(default_factory=dict)
    report: list[tuple[str, str]] | None = None  # a report's parts gathered so far
    report_seq: int = 0
    report_next: int = 0  # the part expected next

    def count(self) -> int:
        return sum(1 if isinstance(had, str) else len(had) for had in self.devices.values())

    def of(self, user: str) -> set[str]:
        had = self.devices.get(user)
        return set() if had is None else {had} if isinstance(had, str) else set(had)


@dataclass
class Outcome:
    transitions: list[Transition] = field(default_factory=list)
    ask: bool = False  # ask the node for the partition's report


class Holdings:
    def __init__(self, book: PresenceBook, ask_every_ms: int) -> None:
        self.book, self.ask_every_ms = book, ask_every_ms
        self._held: dict[tuple[str, int], Holding] = {}

    def heard(self, partition: int, message: wire.Holdings) -> Outcome:
        """One message of a node for ``partition`` (its subject's): the transitions to announce, and whether to ask."""
        holding = self._holding(partition, message.node, message.inc, message.at)
        out = Outcome()
        if holding is None:  # an old incarnation's straggler
            return out
        match message:
            case wire.DeviceHeld():
                self._change(holding, message, out)
            case wire.StillHeld():
                if message.seq == holding.seq and (holding.synced or (message.seq == 0 and not holding.devices)):
                    holding.synced, holding.sure_at = True, message.at  # (number 0: the node never held one here)
                else:  # a change missed (or never heard of this node): ask
                    holding.synced = False
            case wire.HeldReport():
                self._report_part(holding, message, out)
        out.ask = not holding.synced and self._may_ask(holding, message.at)
        return out

    def tick(self, now_ms: int) -> list[Transition]:
        """Nodes silent for the timeout release their devices, then users silent and unheld go offline."""
        cutoff = now_ms - self.book.timeout_ms
        for key, holding in list(self._held.items()):
            if holding.heard_at <= cutoff:
                del self._held[key]
                self._release_all(holding, holding.heard_at)
        return self.book.tick(now_ms)

    def forget(self, partitions: set[int]) -> None:
        """Another worker handles these partitions now; their users are forgotten by the book (no transition)."""
        for key in [k for k in self._held if k[1] in partitions]:
            del self._held[key]

    def holding(self, node: str, partition: int) -> Holding | None:
        return self._held.get((node, partition))

    def __len__(self) -> int:
        return len(self._held)

    # ---- one message ---------------------------------------------------------------------------------------

    def _holding(self, partition: int, node: str, inc: int, at: int) -> Holding | None:
        holding = self._held.get((node, partition))
        if holding is not None and inc < holding.inc:
            return None
        if holding is not None and inc > holding.inc:  # the node restarted: its old connections are closed
            self._release_all(holding, holding.heard_at)
            holding = None
        if holding is None:
            holding = self._held[(node, partition)] = Holding(node, partition, inc)
        if at > holding.heard_at:
            holding.heard_at = at
        return holding

    def _change(self, holding: Holding, change: wire.DeviceHeld, out: Outcome) -> None:
        if holding.synced and change.seq <= holding.seq:  # heard already
            return
        in_order = change.seq == holding.seq + 1 and (holding.synced or change.seq == 1)
        holding.synced, holding.seq = in_order, max(holding.seq, change.seq)
        if in_order:
            holding.sure_at = change.at
        if change.here:
            self._hold(holding, change.user, change.device, change.at, out)
        else:
            self._let_go(holding, change.user, change.device, change.at)

    def _report_part(self, holding: Holding, report: wire.HeldReport, out: Outcome) -> None:
        if report.part == 0:
            holding.report, holding.report_seq, holding.report_next = [], report.seq, 0
        gathered = holding.report
        if gathered is None or holding.report_seq != report.seq or holding.report_next != report.part:
            holding.report = None  # a part missed: the holding stays as it is until another report
            return
        gathered.extend(report.devices)
        holding.report_next += 1
        if report.part < report.parts - 1:
            return
        devices, holding.report = gathered, None
        if report.seq < holding.seq and holding.synced:
            return  # older than what we hold already
        self._replace(holding, devices, report.at, out)
        holding.seq, holding.synced, holding.sure_at = report.seq, True, report.at

    def _replace(self, holding: Holding, devices: list[tuple[str, str]], at: int, out: Outcome) -> None:
        """The holding becomes ``devices``: those no longer listed left after the last moment we were sure of."""
        now: dict[str, set[str]] = {}
        for user, device in devices:
            now.setdefault(user, set()).add(device)
        left_at = holding.sure_at or at
        for user in list(holding.devices):
            for device in holding.of(user) - now.get(user, set()):
                self._let_go(holding, user, device, left_at)
        for user, have in now.items():
            for device in have - holding.of(user):
                self._hold(holding, user, device, at, out)

    def _hold(self, holding: Holding, user: str, device: str, at: int, out: Outcome) -> None:
        had = holding.devices.get(user)
        if had is None:
            holding.devices[user] = device
            change = self.book.hold(user, holding, at)
            if change is not None:
                out.transitions.append(change)
        elif isinstance(had, str):
            if had != device:
                holding.devices[user] = {had, device}
        else:
            had.add(device)

    def _let_go(self, holding: Holding, user: str, device: str, at: int) -> None:
        had = holding.devices.get(user)
        if isinstance(had, set) and device in had:
            had.discard(device)
            if len(had) > 1:
                return
            holding.devices[user] = had.pop()  # one left: kept as itself
        elif had == device:
            del holding.devices[user]
            self.book.release(user, holding, at)

    def _release_all(self, holding: Holding, at: int) -> None:
        for user in holding.devices:
            self.book.release(user, holding, at)
        holding.devices.clear()

    def _may_ask(self, holding: Holding, at: int) -> bool:
        if holding.asked_at is not None and at - holding.asked_at < self.ask_every_ms:
            return False
        holding.asked_at = at
        return True
