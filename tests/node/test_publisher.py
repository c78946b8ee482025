"""The publisher's per-conversation tails stay bounded, and a forgotten tail costs a stream read, never a
broken chain (docs/adr/0016). A stand-in JetStream that keeps the one rule the publisher relies on:
``Nats-Expected-Last-Subject-Sequence`` must name the subject's last sequence."""

from __future__ import annotations

import orjson
from nats.js.errors import APIError
from parley.node.publisher import Publisher

from parley.bus.stream import WRONG_LAST_SEQUENCE
from parley.ids import ConversationId
from parley.shards import pack, pos_of_id


class Stream:
    def __init__(self) -> None:
        self.seq = 0
        self.last: dict[str, int] = {}
        self.prev: dict[int, int] = {}  # seq -> the prev its payload named

    async def publish(self, subject: str, payload: bytes, msg_id: str, expected: int) -> tuple[int, bool]:
        have = self.last.get(subject, 0)
        if expected != have:
            raise APIError(code=400, err_code=WRONG_LAST_SEQUENCE, description=f"wrong last sequence: {have}")
        self.seq += 1
        self.last[subject] = self.seq
        self.prev[self.seq] = orjson.loads(payload)["prev"]
        return self.seq, False


async def test_tails_are_bounded_and_a_forgotten_one_is_read_from_the_stream():
    stream, asked = Stream(), []

    async def shard_of(conv: ConversationId) -> int:
        return 0

    async def stream_last(shard: int, conv: ConversationId) -> int:
        asked.append(conv)
        return pack(0, stream.last.get(f"msg.0.{conv}", 0))

    async def store_last(conv: ConversationId) -> int:
        return 0

    publisher = Publisher(stream.publish, shard_of, stream_last, store_last, tails=3)
    convs = [ConversationId(f"c{i}") for i in range(8)]
    ids: dict[str, list[int]] = {c: [] for c in convs}
    for round_ in range(3):
        for conv in convs:
            id, duplicate = await publisher.publish(conv, lambda prev: orjson.dumps({"prev": prev}), f"{conv}-{round_}")
            ids[conv].append(id)
            assert publisher.remembered() <= 3
    for conv in convs:  # every message names its predecessor: the chain holds across forgetting
        chain = ids[conv]
        assert [stream.prev[pos_of_id(i)] for i in chain] == [0, *chain[:-1]]
    assert len(asked) == 8 * 3  # eight conversations through three tails: each send asked the stream
