"""Stored messages off the delivery subjects, to the devices of their conversation on this node.

Messages stored in the stream arrive on the delivery subjects in stream order and are offered to every device of
the conversation here; each session judges them against its own position, so nothing is skipped and nothing is
sent twice. A message's stream and sequence are read straight from its header block (``stream_position``: a fifth
of a parse, ADR 0037); its ``msg`` frame is made once for all the devices (``_framed``), and its latency
(``parley_node_delivery_seconds``) observed once, when it is framed.

A DM between two users connected here comes twice, once through each member's subscription, one right after the
other (ADR 0033). The second copy is recognised by its header block and subject, equal to the copy just read (the
block names the stream and sequence, so it is the same stored message): its position is not read again and the
shard map and the publisher's tails, told by the first, are not told again; it goes to its member's devices only
(ADR 0066).
"""

from __future__ import annotations

import time

from parley.node.homes import Homes
from parley.node.hub import Hub
from parley.node.link import DeviceLink
from parley.node.publisher import Publisher
from parley.node.session import Delivery

from parley.bus.ordered import stream_position
from parley.ids import ConversationId, UserId, conversation_of_delivery
from parley.messages import live_delivery
from parley.metrics import NodeMetrics
from parley.shards import pack, shard_of_stream


class Deliveries:
    """``on_delivery``: the handler of every delivery subscription of the node (DMs' and groups')."""

    __slots__ = ("_stream_name", "_hub", "_homes", "_publisher", "_metrics", "_stream_shards", "_framed", "_last")

    def __init__(self, stream_name: str, hub: Hub[DeviceLink], homes: Homes, publisher: Publisher,
                 metrics: NodeMetrics) -> None:
        self._stream_name, self._hub, self._homes, self._publisher = stream_name, hub, homes, publisher
        self._metrics = metrics
        self._stream_shards: dict[str, int] = {}  # a delivery's stream name → its shard
        self._framed = Delivery(0, "", 0, "", b"")  # the last delivery framed
        # the last message read: its header block, subject, conversation and id (the DM's other copy is recognised)
        self._last: tuple[bytes, str, ConversationId, int] = (b"", "", ConversationId(""), 0)

    def on_delivery(self, subject: str, headers: bytes | None, data: bytes, only: UserId | None = None) -> None:
        """A stored message, in stream order, its header block as it came. ``only``: it came through that user's DM
        subscription, for that user's devices; a group's is for every member here."""
        if headers is None:
            return
        last = self._last
        if only is not None and headers == last[0] and subject == last[1]:  # the other member's copy of a DM
            self._offer(last[2], last[3], data, only)
            return
        found = stream_position(headers)
        if found is None:
            return
        stream, seq = found
        shard = self._stream_shards.get(stream)
        if shard is None:
            shard = shard_of_stream(self._stream_name, stream)
            if shard is None:
                return
            self._stream_shards[stream] = shard  # a handful of names: the shards' streams
        conv = conversation_of_delivery(subject)
        id = pack(shard, seq)
        self._last = (headers, subject, conv, id)
        self._homes.learn(conv, shard)
        self._publisher.observe(conv, id)
        self._offer(conv, id, data, only)

    def _offer(self, conv: ConversationId, id: int, data: bytes, only: UserId | None) -> None:
        links = self._hub.of_user(only) if only else self._hub.of_conversation(conv)
        if not links:
            return
        delivery, ts = self._framed, None
        if delivery.id != id or delivery.conv != conv:  # not the other member's copy of the one just framed
            prev, sender, ts, frame = live_delivery(id, conv, data)  # decoded and its frame encoded once for all
            delivery = self._framed = Delivery(id, conv, prev, sender, frame)
        for link in links:  # a group's (``only`` is for a DM's) may wait for the write gap (ADR 0056)
            link.offer(delivery, only is None)
        self._metrics.delivered.inc(len(links))
        if ts is not None:  # a message's latency, once per message framed here (not again for the DM's other copy)
            self._metrics.e2e_seconds.observe(max(0.0, time.time() - ts / 1000))
