"""Publishing a message so that it names its predecessor, in its conversation's home shard.

Each conversation's messages are chained: the payload carries ``prev`` (the previous id) and the
publish carries ``Nats-Expected-Last-Subject-Sequence`` with that message's stream sequence, so the
shard's stream refuses a message whose ``prev`` is stale and we retry with the sequence the refusal
names (a clustered stream with a message of the subject still in flight names none: we ask the stream
again after a pause). Sends into one conversation from this node are serialised (a conversation with a send
in flight queues the next ones, woken in turn; one with none takes no lock at all, ADR 0065), so this node
never races itself. ``Nats-Msg-Id`` makes a resend of the same client message id return the first
message's id (within the stream's duplicate window). The ack's sequence and the shard make the id
(``parley.shards``).

One publish per conversation is in flight at a time (a connection's other sends wait on their lanes,
``node/pending.py``, never the read loop). Several could only be pipelined if ``prev`` were not in the
payload: the republish header ``Nats-Last-Sequence`` does name the subject's previous sequence
(nats-server loads the subject's last message before storing), but only on the republished copy;
sync's stream reads and the archiver read the stored message, whose ``prev`` must be known when it is
published, i.e. after the previous publish's ack. JetStream's atomic batches would allow it (a batch is stored
at consecutive sequences, so a member's ``prev`` is its own sequence − 1), but on R1 file streams each batch
costs nats-server ~2 ms of CPU: ADR 0045 has the design and why it is not built.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from nats.js.errors import APIError

from parley.bus import parse_wrong_last_sequence
from parley.bus.outage import TRANSIENT, unavailable
from parley.errors import Unavailable
from parley.ids import ConversationId
from parley.shards import message_subject, pack, pos_of_id

MAX_ATTEMPTS = 16
TAILS = 100_000  # conversations whose last id this node remembers
# "wrong last sequence" without the number: a clustered stream has a message of the subject in flight
WRONG_LAST_SEQUENCE_IN_FLIGHT = 10164
IN_FLIGHT_PAUSE_S = 0.002
# (subject, payload, dedup id, expected last subject sequence) -> (sequence, duplicate): parley.bus.publish_chained
ChainedPublish = Callable[[str, bytes, str, int], Awaitable[tuple[int, bool]]]


class Publisher:
    def __init__(
        self,
        stream_publish: ChainedPublish,
        shard_of: Callable[[ConversationId], Awaitable[int]],
        stream_last: Callable[[int, ConversationId], Awaitable[int]],
        store_last: Callable[[ConversationId], Awaitable[int]],
        *,
        tails: int = TAILS,
    ) -> None:
        self._stream_publish = stream_publish
        self._shard_of = shard_of
        self._stream_last = stream_last
        self._store_last = store_last
        self._tails = tails
        # conversation -> last id seen: at most ``tails``, the least recently seen forgotten first (its next
        # send asks the stream for the subject's last sequence, as after a restart)
        self._last: OrderedDict[str, int] = OrderedDict()
        # conversation -> the sends waiting behind the one in flight (None: none waits), for conversations
        # with a send in flight only
        self._busy: dict[str, deque[asyncio.Future[None]] | None] = {}

    def observe(self, conv: str, id: int) -> None:
        """A message of ``conv`` was seen on the delivery subjects."""
        if id > self._last.get(conv, 0):
            self._last[conv] = id
            self._last.move_to_end(conv)
            if len(self._last) > self._tails:
                self._last.popitem(last=False)

    def remembered(self) -> int:
        return len(self._last)

    async def publish(
        self, conv: ConversationId, payload: Callable[[int], bytes], msg_id: str
    ) -> tuple[int, bool]:
        busy = self._busy
        if conv in busy:
            await self._wait_turn(conv)
        else:
            busy[conv] = None  # nothing in flight: the turn is ours at once, no lock
        try:  # one coroutine: each layer is resumed again at the PubAck (ADR 0065)
            shard = await self._shard_of(conv)
            subject = message_subject(shard, conv)
            last = self._last.get(conv)
            # the stream read raises bus_unavailable during an election
            expected = pos_of_id(last) if last is not None else pos_of_id(await self._stream_last(shard, conv))
            for attempt in range(MAX_ATTEMPTS):
                # An empty subject (new, or older than the stream's retention) chains to the store's last.
                prev = pack(shard, expected) if expected else await self._store_last(conv)
                try:
                    seq, duplicate = await self._stream_publish(subject, payload(prev), msg_id, expected)
                except APIError as err:
                    if err.err_code == WRONG_LAST_SEQUENCE_IN_FLIGHT:
                        # clustered: another message of this subject is being replicated and its sequence is not
                        # known yet; ask again in a moment
                        await asyncio.sleep(IN_FLIGHT_PAUSE_S * (attempt + 1))
                        expected = pos_of_id(await self._stream_last(shard, conv))
                        continue
                    actual = parse_wrong_last_sequence(err)
                    if actual is None:
                        self._last.pop(conv, None)
                        raise Unavailable(f"stream refused the message: {err.description}",
                                          code="bus_unavailable") from err
                    expected = actual
                    continue
                except TRANSIENT as err:  # an election (NoStreamResponseError), a timeout, a reconnect
                    self._last.pop(conv, None)
                    raise unavailable(err, "the message was not confirmed; resend it") from err
                id = pack(shard, seq)
                if not duplicate:
                    self.observe(conv, id)
                return id, duplicate
            raise Unavailable("conversation too busy; resend the message", code="bus_unavailable")
        finally:
            self._pass_turn(conv)

    def in_flight(self) -> int:
        """Conversations with a send being published."""
        return len(self._busy)

    async def _wait_turn(self, conv: str) -> None:
        """Queue behind the conversation's send in flight (and those already queued) until ``_pass_turn``
        hands the turn over; a waiter cancelled after being handed the turn passes it on."""
        waiters = self._busy[conv]
        if waiters is None:
            waiters = self._busy[conv] = deque()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_turn(conv)  # it was ours already
            raise

    def _pass_turn(self, conv: str) -> None:
        """The send in flight is done: the next one waiting takes its turn, or the conversation is idle."""
        waiters = self._busy[conv]
        while waiters:
            turn = waiters.popleft()
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)
                return
        del self._busy[conv]
