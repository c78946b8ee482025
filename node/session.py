"""One device connection, without I/O: the sans-I/O core of the edge node.

The shell (``node/link.py``) owns the socket and writes what is queued; a ``DeviceSession`` owns everything
else about the connection — its state, its position in the user's message sequence, the messages
held while a sync round runs, what the device has not acked yet, and the queue of frames to send —
and is driven by events. No awaits, no clock, no NATS. The states, and the events that move them
(``TRANSITIONS`` is the table; any other event in a state is a bug and raises ``SessionError``):

    HELLO    ──accept──────────────────────────────▶ SYNCING
    SYNCING  ──finish_round (nothing missing)──────▶ LIVE
    SYNCING  ──finish_round (a gap or overflow)────▶ SYNCING (the shell runs another round)
    LIVE     ──resync / client_sync / a gap────────▶ SYNCING
    any open ──close / drain / queue overflow──────▶ CLOSING  (frames queued before it still go out)
    CLOSING  ──closed──────────────────────────────▶ CLOSED

Messages reach the session two ways: ``synced`` (read by a sync round from the store or the stream,
in id order) and ``live`` (from the node's subscriptions, in stream order). While SYNCING, live
messages are held and judged when the round finishes; while LIVE they are judged at once. Judging is
``Position``'s (per conversation, by each message's ``prev``): deliver, drop a duplicate, or see a gap,
which makes the session ask for a sync from the last good point (``SyncFrom``).

Invariants (property-tested in tests/node/test_session_properties.py with random interleavings of
live messages, sync rounds, resyncs and acks):
- per conversation, the ``msg`` frames queued form the conversation's chain in order, with no gap and,
  within one connection, no message twice (``sent`` remembers the last id queued per conversation, so
  a repair round does not resend what this connection already sent; a client's own ``sync`` does);
- ``position.delivered`` — what an ack may confirm — never passes a message that was not queued.

Bounded (docs/adr/0016-bounded-state.md): ``out`` (None when empty) holds at most ``max_queue`` frames (past it:
closed, 4009);``_unacked`` (messages from others queued and not acked yet) at most ``max_unacked``: a sync round waits
(``crowded``) from half of it until an ack brings it to a quarter, and a live message past it closes the
connection (4009, reason ``too many unacked messages``): the device reconnects and syncs from its last acked
cursor, so nothing it did not ack is lost. ``sent`` has one entry per conversation this connection was sent.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from parley.node.position import Position

from parley.errors import CLOSE_NORMAL, CLOSE_SLOW
from parley.gaps import Hole
from parley.ids import UserId
from parley.shards import SHARD_BITS, Vector, covers, pos_of_id, shard_of_id, vmax, vmin

_MASK = (1 << SHARD_BITS) - 1  # ``shard_of_id``, inline
BUFFER_LIMIT = 10000  # live messages held during one sync round; past it the round is redone


class State(enum.Enum):
    HELLO = "hello"
    SYNCING = "syncing"
    LIVE = "live"
    CLOSING = "closing"
    CLOSED = "closed"

    __hash__ = object.__hash__  # members are singletons: ``state in OPEN`` on every frame, without Enum's hash


OPEN = frozenset({State.HELLO, State.SYNCING, State.LIVE})
# for the per-delivery paths: a module global is read in ~0.1 µs, ``State.LIVE`` (Enum's class attribute
# lookup, Python 3.11) in ~0.4 µs — per device, per message (docs/adr/0034)
LIVE, SYNCING, CLOSED = State.LIVE, State.SYNCING, State.CLOSED
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.HELLO, "accept"): State.SYNCING,
    (State.SYNCING, "round"): State.SYNCING,
    (State.SYNCING, "finish_live"): State.LIVE,
    (State.SYNCING, "finish_again"): State.SYNCING,
    (State.SYNCING, "resync"): State.SYNCING,
    (State.LIVE, "resync"): State.SYNCING,
    (State.LIVE, "gap"): State.SYNCING,
    **{(s, "close"): State.CLOSING for s in OPEN},
    (State.CLOSING, "closed"): State.CLOSED,
    **{(s, "closed"): State.CLOSED for s in OPEN},
}


class SessionError(Exception):
    """An event the session's state does not allow: a bug in the shell, not the peer's fault."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stored message on its way to a device: its ids, its sender and its encoded ``msg`` frame."""

    id: int
    conv: str
    prev: int
    sender: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class SyncFrom:
    """Action: run a sync round reading from ``point`` (per shard, everything after its position)."""

    point: dict[int, int]


Covered = dict[str, tuple[int, set[str]]]  # per conversation: highest id acked from others, and their senders


class DeviceSession:
    __slots__ = ("user", "state", "out", "position", "acked", "close_code", "close_reason", "sent",
                 "_max_queue", "_max_unacked", "_held", "_overflow", "_unacked", "_unacked_n", "_offered")

    def __init__(self, user: UserId, *, max_queue: int, max_unacked: int | None = None) -> None:
        self.user = user
        self.state = State.HELLO
        # frames to send, in order; the shell's writer takes them (``take_out``). None while nothing is queued:
        # made on first use and dropped when the writer takes it (an empty deque is 0.76 KB, ADR 0039)
        self.out: deque[bytes] | None = None
        self.position = Position()
        self.acked: dict[int, int] = {}  # the device has acked everything up to here, per shard
        self._offered: dict[int, int] = {}  # the position last offered to the device as a cursor
        self.close_code, self.close_reason = CLOSE_NORMAL, ""
        self.sent: dict[str, int] = {}  # per conversation, the last id queued on this connection
        self._max_queue = max_queue
        self._max_unacked = max_queue if max_unacked is None else max_unacked
        self._held: list[Delivery] = []  # live messages that arrived during the current sync round
        self._overflow = False
        # messages from others queued and not acked, per conversation: their ids (rising: one conversation's
        # chain, each once) and senders, side by side, so an ack takes each conversation's covered ones in one
        # slice (ADR 0053). Made on first use and dropped when empty: an idle connection has nothing unacked
        self._unacked: dict[str, tuple[list[int], list[str]]] | None = None
        self._unacked_n = 0  # how many, over all conversations

    # ---- state ---------------------------------------------------------------------------------

    def _move(self, event: str) -> None:
        to = TRANSITIONS.get((self.state, event))
        if to is None:
            raise SessionError(f"{event} while {self.state.value}")
        self.state = to

    @property
    def open(self) -> bool:
        return self.state in OPEN

    @property
    def crowded(self) -> bool:
        """More than half the outbound queue, or of the unacked bound, is used: a sync round should wait for
        room (the writer draining the queue, the device acking)."""
        return self.queued > self._max_queue // 2 or self.unacked > self._max_unacked // 2

    def roomy(self) -> bool:
        """The writer has drained the queue, and the device acked, far enough for a waiting sync round to go on."""
        return self.queued <= self._max_queue // 4 and self.unacked <= self._max_unacked // 4

    @property
    def queued(self) -> int:
        """Frames queued and not taken by the writer yet."""
        return len(self.out) if self.out is not None else 0

    @property
    def unacked(self) -> int:
        """Messages from others queued on this connection and not acked yet."""
        return self._unacked_n

    # ---- outbound ------------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Queue a frame (nothing once closing); a device this far behind is closed (4009)."""
        if self.state not in OPEN:
            return
        out = self.out
        if out is None:
            out = self.out = deque()
        out.append(frame)
        if len(out) > self._max_queue:
            self.close(CLOSE_SLOW, "too slow to read", flush=False)

    def take_out(self) -> deque[bytes] | None:
        """The frames queued, in order, handed to the writer: the session's queue is empty after."""
        out, self.out = self.out, None
        return out

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Close after the queued frames (or at once, dropping them, when ``flush`` is false)."""
        if self.state not in OPEN:
            return
        self._move("close")
        self.close_code, self.close_reason = code, reason
        if not flush:
            self.out = None

    def drain(self, moved: bytes, code: int, reason: str) -> None:
        """The node is draining: the ``moved`` frame goes after everything queued, then the close."""
        self.send(moved)
        self.close(code, reason)

    def closed(self) -> None:
        """The socket is gone (the writer finished, or the peer left)."""
        if self.state is not State.CLOSED:
            self._move("closed")
        self.out = None

    # ---- the handshake and sync rounds ---------------------------------------------------------

    def accept(self, cursor: Vector, welcome: bytes) -> SyncFrom:
        """The hello was verified: welcome, then a sync from ``cursor``."""
        self._move("accept")
        self.acked = dict(cursor)
        self._offered = dict(cursor)
        self.position.restart(cursor)
        self.send(welcome)
        return SyncFrom(dict(cursor))

    def begin_round(self, after: Vector) -> None:
        """A sync round starts reading everything after ``after``; live messages are held meanwhile."""
        if self.state is State.LIVE:
            self._move("resync")
        self._move("round")
        self._held = []
        self._overflow = False
        self.position.restart(after)

    def cap_cursor(self, shard: int, last: int) -> None:
        """The device's cursor was beyond a shard's newest message: it cannot have acked past ``last``."""
        if self.acked.get(shard, 0) > last:
            self.acked[shard] = last

    def synced(self, m: Delivery) -> bool:
        """A message the round read, in id order. True when it names a predecessor the round did not
        read: a hole in the store or the stream (it is sent anyway; the caller reports the hole)."""
        if self.state is not State.SYNCING:
            return False  # closing: nothing more goes out
        hole = self.position.judge(m.id, m.conv, m.prev) == "gap"
        if pos_of_id(m.id) > self.position.delivered.get(shard_of_id(m.id), 0):
            self.position.advance(m.id, m.conv)
            self._queue(m)
        return hole

    def hole_before(self, m: Delivery) -> Hole | None:
        """The hole ``m`` (read by the round) would leave in its conversation, or None: its ``prev`` was never
        read. The round may fill it (``fill``, from the stream) before it hands ``m`` to ``synced``."""
        if self.state is not State.SYNCING or self.position.judge(m.id, m.conv, m.prev) != "gap":
            return None
        return Hole(self.position.known(m.conv, shard_of_id(m.id)), m.id)

    def fill(self, m: Delivery) -> None:
        """A message the round read from the stream into a hole of its conversation, in id order within the
        conversation (it may be below what the round sent of other conversations in its shard)."""
        if self.state is State.SYNCING and self.position.fill(m.id, m.conv):
            self._queue(m)

    def finish_round(self, through: Vector, skipped: Iterable[int] = ()) -> SyncFrom | None:
        """The round read everything up to ``through``: send what was held, go live (or sync again).
        ``skipped``: shards the round could not read: in doubt from where they stood (``Position.marks``)
        until a round reads them."""
        if self.state is not State.SYNCING:
            return None
        self.position.reach(through)
        self.position.doubt(skipped)
        if self._overflow:
            self._move("finish_again")
            return SyncFrom(self.position.resume())
        held, self._held = self._held, []
        for m in held:
            verdict = self.position.accept(m.id, m.conv, m.prev)
            if verdict == "deliver":
                self._queue(m)
            elif verdict == "gap":
                self._move("finish_again")
                return SyncFrom(self.position.resume_point(m.conv, shard_of_id(m.id)))
        self._move("finish_live")
        return None

    def suspend(self, shards: Iterable[int]) -> None:
        """``shards`` stopped answering (the link to their region is down): messages they republish may be
        lost on the way, so the device is not offered a cursor past where it stands in them until a round
        reads them again (``resync`` starts there)."""
        if self.open:
            self.position.doubt(shards)

    def live(self, m: Delivery) -> SyncFrom | None:
        """A message from the node's subscriptions, in stream order."""
        state = self.state
        if state is LIVE:  # the common case first: every device of a conversation, per message
            verdict = self.position.accept(m.id, m.conv, m.prev)
            if verdict == "deliver":
                self._queue(m)
                return None
            if verdict == "duplicate":
                return None
            self._move("gap")
            self._held = [m]  # judged again when the repair round finishes
            self._overflow = False
            return SyncFrom(self.position.resume_point(m.conv, shard_of_id(m.id)))
        if state is SYNCING:
            if len(self._held) < BUFFER_LIMIT:
                self._held.append(m)
            else:
                self._overflow = True
        return None  # HELLO (not subscribed yet) or closing

    def resync(self, point: Vector | None = None) -> SyncFrom | None:
        """Sync again from ``point`` (default: where the device stands), e.g. after the node's NATS
        connection came back or the user joined a group. What this connection sent is not resent."""
        if not self.open or self.state is State.HELLO:
            return None
        if self.state is State.LIVE:
            self._move("resync")
        return SyncFrom(self.position.resume() if point is None else dict(point))

    def client_sync(self, after: Vector) -> SyncFrom | None:
        """The device asked for everything after ``after`` again: that includes what it was sent."""
        action = self.resync(after)
        if action is not None:
            self.sent.clear()
        return action

    def _queue(self, m: Delivery) -> None:
        if m.id <= self.sent.get(m.conv, 0):
            return  # this connection sent it already (a repair round reads it again)
        if m.sender != self.user:
            if self._unacked_n >= self._max_unacked:
                self.close(CLOSE_SLOW, "too many unacked messages", flush=False)
                return  # not queued: the device gets it again after reconnecting from its acked cursor
            unacked = self._unacked
            if unacked is None:
                unacked = self._unacked = {}
            run = unacked.get(m.conv)  # ids and senders, not ``m``: that would keep its frame until the ack
            if run is None:
                unacked[m.conv] = ([m.id], [m.sender])
                self._unacked_n += 1
            elif m.id > run[0][-1]:
                run[0].append(m.id)
                run[1].append(m.sender)
                self._unacked_n += 1
            # else queued again after a client's own sync (``client_sync``): waiting for its ack once is enough
        self.sent[m.conv] = m.id
        out = self.out  # ``send``, without its check: every caller is in an open state
        if out is None:
            out = self.out = deque()
        out.append(m.frame)
        if len(out) > self._max_queue:
            self.close(CLOSE_SLOW, "too slow to read", flush=False)

    # ---- acks ----------------------------------------------------------------------------------

    def take_cursor(self) -> dict[int, int] | None:
        """The position to offer the device as its next cursor, when it moved since the last offer."""
        point = self.position.offerable()
        if self.state not in (State.SYNCING, State.LIVE) or point == self._offered:
            return None
        self._offered = point
        return self._offered

    def cursor_position(self) -> dict[int, int]:
        """The position a cursor may carry now (``Position.offerable``)."""
        return self.position.offerable()

    def ack(self, point: Vector) -> Covered | None:
        """The device has everything up to ``point`` (a cursor it was offered): None if nothing changed,
        else, per conversation, the highest id from someone else that the ack covers (what a delivered
        receipt announces) and who sent the messages it covers (whom a group's receipt goes to)."""
        point = vmin(point, self.position.offerable())
        if covers(self.acked, point):
            return None
        acked = self.acked = vmax(self.acked, point)
        covered: Covered = {}
        unacked = self._unacked
        if not unacked:
            return covered
        for conv, (ids, senders) in list(unacked.items()):  # per conversation, not per message (ADR 0053)
            shard = ids[-1] & _MASK  # a conversation's ids are of its home shard (``Position`` compares them)
            upto = (acked.get(shard, 0) << SHARD_BITS) | shard  # the highest id the ack covers there
            n = len(ids) if ids[-1] <= upto else bisect_right(ids, upto)
            if n == 0:
                continue
            covered[conv] = (ids[n - 1], set(senders[:n]))
            self._unacked_n -= n
            if n == len(ids):
                del unacked[conv]
            else:
                del ids[:n], senders[:n]
        if not unacked:
            self._unacked = None
        return covered
