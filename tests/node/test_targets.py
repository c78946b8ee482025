"""node/targets.py: the target of a reply or action, as it is now — store row plus the stream's unarchived
tail, or the stream alone before the archiver wrote it — and the entry a send then publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest
from parley.node.targets import Duplicate, Targets

from parley.errors import ParleyError
from parley.ids import ConversationId, DeviceId, UserId
from parley.messages import decode_payload, encode_payload
from parley.protocol import Send
from parley.shards import message_subject, pack
from parley.store import Conversation, StoredMessage

CONV = ConversationId("g.aaaaaaaaaaaaaaaa")
SHARD = 3
ALICE, BOB = UserId("alice"), UserId("bob")


def P(n: int) -> int:  # noqa: N802 — the id of sequence n in the conversation's shard
    return pack(SHARD, n)


def row(n: int, sender: UserId = ALICE, body: str = "hi", **entry: object) -> tuple[int, str, bytes]:
    return P(n), message_subject(SHARD, CONV), encode_payload(sender=sender, device=DeviceId("d"), cid=f"c{n}",
                                                             body=body, ts=1000, prev=P(n - 1), **entry)


class Store:
    def __init__(self, rows: list[StoredMessage]) -> None:
        self.rows = rows

    async def history(self, conv: ConversationId, *, before: int | None, after: int | None, limit: int,
                      newest_first: bool) -> list[StoredMessage]:
        return [m for m in self.rows if (after or 0) < m.id < (before or 2**62)][:limit]

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        return Conversation(CONV, "group", (ALICE, BOB), 1, roles=((ALICE, "owner"),))


class Reads:
    shards = 8

    def __init__(self, stream: list[tuple[int, str, bytes]], archived: int) -> None:
        self.stream, self.archived = stream, archived

    async def bounds(self, shard: int) -> tuple[int, int]:
        return 1, len(self.stream)

    async def archived_through(self, shard: int) -> int:
        return self.archived

    async def last_of(self, shard: int, conv: str) -> int:
        return P(len(self.stream))

    async def batches(self, shard: int, filters: Iterable[str], *, start: int, end: int,
                      size: int) -> AsyncIterator[list[tuple[int, str, bytes]]]:
        yield self.stream[start - 1:end]


def targets(stored: int, stream: list[tuple[int, str, bytes]]) -> Targets:
    """The first ``stored`` messages of ``stream`` are archived (their rows as they were sent)."""
    rows = [decode_payload(i, CONV, data) for i, _, data in stream[:stored]]

    async def shard_of(conv: ConversationId) -> int:
        return SHARD

    return Targets(Store(rows), Reads(stream, stored), shard_of)  # type: ignore[arg-type]


async def test_a_stored_target_gets_the_unarchived_tails_actions():
    stream = [row(1), row(2, BOB, "", kind="delete", target=P(1), target_ts=1000)]
    target = await targets(1, stream).current(CONV, P(1))
    assert target is not None and target.state.deleted and target.body == ""


async def test_a_target_not_archived_yet_is_read_from_the_stream():
    stream = [row(1), row(2, body="new", kind="edit", target=P(1), target_ts=1000), row(3, BOB, "other")]
    target = await targets(0, stream).current(CONV, P(1))
    assert target is not None and (target.body, target.state.edit_id) == ("new", P(2))
    assert await targets(0, stream).current(CONV, P(4)) is None
    assert await targets(3, stream).current(CONV, P(1) + 1) is None  # another shard's id


async def test_the_entry_of_a_reply_quotes_and_a_resent_delete_is_a_duplicate():
    stream = [row(1, body="x" * 150), row(2, BOB, "", kind="delete", target=P(1), target_ts=1000)]
    t = targets(1, stream[:1])
    reply = Send("r", CONV, "yes", reply_to=P(1))
    assert await t.entry(BOB, reply, 2000, 900) == {"reply_to": P(1), "target_ts": 1000, "quote_from": ALICE,
                                                    "quote": "x" * 100}
    assert await t.entry(BOB, Send("p", CONV, "plain"), 2000, 900) == {}
    # bob is a plain member of the group: alice's message is not his to delete
    with pytest.raises(ParleyError) as err:
        await t.entry(BOB, Send("d", CONV, "", kind="delete", target=P(1)), 2000, 900)
    assert err.value.code == "not_sender"
    with pytest.raises(Duplicate) as dup:
        await targets(1, stream).entry(BOB, Send("c2", CONV, "", kind="delete", target=P(1)), 2000, 900)
    assert dup.value.id == P(2)
