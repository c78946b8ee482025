"""The store benchmark's workload (``loadtest.store_bench``): every message's conversation, id, sender,
body and time, generated from a seed, so both backends get exactly the same writes and every read's
right answer is known.

DM conversations between random users, five "hot" ones taking 40% of the messages (conversation 0
alone 20%, and at least ``HOT_MIN`` messages, topped up at the end if needed), bodies of about 60-200
bytes from a small pool, timestamps spaced ``86,400,000 / msgs_per_day`` ms apart ending now.

Messages are numbered 1..total in the order they are written (``n``). Each conversation is homed in a
shard (``parley.shards.home_for`` over ``shards``) and a message's id is what that shard's stream gives
it: ``pack(shard, k)`` for the shard's k-th message, so messages 1..archived, published in order to fresh
streams, get exactly the ids the plan knows (the rest are written with ids that continue each shard's
sequence). Ids compare only within a shard; ``prev`` chains each conversation.
"""

from __future__ import annotations

import argparse
import random
import time
from array import array
from dataclasses import dataclass
from typing import Any

from parley.ids import DeviceId, MessageId, UserId, dm_conversation, new_device_id, new_user_id
from parley.messages import encode_payload
from parley.settings import Settings
from parley.shards import home_for, message_subject, pack, pos_of_id, shard_of_id
from parley.store import Conversation, StoredMessage

BATCH = 500  # put_messages batches (the archiver's Settings.archiver_batch was 500 until ADR 0058; kept comparable)
IN_FLIGHT = (1, 4)  # put_messages levels
HOT_MIN = 20_000  # conversation 0 holds at least this many messages for the reads
PAGE, PAGE_BACK = 50, 10_000  # history pages: the newest, and the one starting 10,000 messages back
SYNC_CONVS, SYNC_BACK, SYNC_LIMIT = 50, 1_000, 200
HOT_SHARES = {0: 0.20, 1: 0.05, SYNC_CONVS + 1: 0.05, SYNC_CONVS + 2: 0.05, SYNC_CONVS + 3: 0.05}
BODY_MIN, BODY_MAX, BODY_POOL = 60, 200, 4096
WORDS = ("ok sure see you at the station tomorrow did you get my message running late can't make it "
         "tonight what about lunch sounds good thanks a lot call me when you're free the meeting moved "
         "to three I'll bring the keys where are you now just landed happy birthday 🎉 café déjà vu").split()


@dataclass
class Plan:
    """Every message's conversation, id, sender, body and time; one plan serves both backends."""

    archived: int  # messages 1..archived go through the streams and the archiver
    put: int  # then this many per put_messages level
    topped_up: int  # then this many more in conversation 0, so it holds at least HOT_MIN
    shards: int
    convs: list[Conversation]  # each with its home shard
    sync_user: UserId
    devices: dict[UserId, DeviceId]
    conv_of: array[int]  # by n - 1
    ids: array[int]  # by n - 1: packed (parley.shards)
    prev: array[int]  # by n - 1: the conversation's previous id (0: none)
    side: bytearray  # which member sent it
    bodies: list[str]
    t0_ms: int
    step_ms: int
    hot_ids: list[int]  # conversation 0's ids, ascending
    sync_shard: int  # the shard holding most of the sync user's messages: the sync read's
    sync_ids: list[int]  # the sync user's ids in that shard, ascending

    @property
    def total(self) -> int:
        return len(self.conv_of)

    def put_ids(self, level: int) -> range:
        start = self.archived + level * self.put + 1
        return range(start, start + self.put)

    def topup_ids(self) -> range:
        return range(self.archived + len(IN_FLIGHT) * self.put + 1, self.total + 1)

    def message(self, n: int) -> StoredMessage:
        conv = self.convs[self.conv_of[n - 1]]
        sender = conv.members[self.side[n - 1]]
        return StoredMessage(MessageId(self.ids[n - 1]), conv.id, self.prev[n - 1], sender, self.devices[sender],
                             f"{n * 0x9E3779B97F4A7C15 % 2**64:016x}", self.bodies[n % BODY_POOL],
                             self.t0_ms + n * self.step_ms)

    def payload(self, n: int) -> tuple[str, bytes]:
        m = self.message(n)
        subject = message_subject(shard_of_id(m.id), m.conv)
        return subject, encode_payload(sender=m.sender, device=m.device, cid=m.cid, body=m.body, ts=m.ts,
                                       prev=m.prev)

    def stream_lasts(self, upto: int) -> dict[int, int]:
        """Per shard, the stream sequence of its last message among 1..``upto`` (shards without one: 0)."""
        out = dict.fromkeys(range(self.shards), 0)
        for id in self.ids[:upto]:
            out[shard_of_id(id)] = pos_of_id(id)
        return out

    def shard_top(self, shard: int) -> int:
        """The highest id the plan gives in ``shard`` (``pack(shard, 0)`` when none)."""
        return pack(shard, self.stream_lasts(self.total)[shard])


def _body(rng: random.Random) -> str:
    target, words, size = rng.randint(BODY_MIN, BODY_MAX), [], -1
    while size < target:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word.encode()) + 1
    return " ".join(words)


def _pairs(rng: random.Random, pool: list[UserId], sync_user: UserId, n: int) -> list[tuple[UserId, UserId]]:
    """Conversation 0 (two pool users), then the sync user's DMs, then random distinct pairs."""
    pairs = [(pool[0], pool[1])] + [(sync_user, pool[2 + i]) for i in range(SYNC_CONVS)]
    seen = {frozenset(p) for p in pairs}
    while len(pairs) < n:
        a, b = rng.sample(pool, 2)
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            pairs.append((a, b))
    return pairs


def _assign(rng: random.Random, convs: int, n: int) -> list[int]:
    """A conversation index per message: the hot ones by HOT_SHARES, the rest uniformly."""
    rest = (1 - sum(HOT_SHARES.values())) / (convs - len(HOT_SHARES))
    weights = [HOT_SHARES.get(i, rest) for i in range(convs)]
    assigned = rng.choices(range(convs), weights=weights, k=n)
    return assigned + [0] * max(0, HOT_MIN - assigned.count(0))


def _ids(convs: list[Conversation], assigned: list[int], shards: int) -> tuple[array[int], array[int]]:
    """Each message's id (its shard's next sequence) and its conversation's previous id."""
    seqs, last = [0] * shards, [0] * len(convs)
    ids, prev = array("q", bytes(8 * len(assigned))), array("q", bytes(8 * len(assigned)))
    for i, c in enumerate(assigned):
        shard = convs[c].shard or 0
        seqs[shard] += 1
        ids[i] = pack(shard, seqs[shard])
        prev[i], last[c] = last[c], ids[i]
    return ids, prev


def build_plan(args: argparse.Namespace, shards: int) -> Plan:
    rng = random.Random(args.seed)
    sync_user = new_user_id()
    pool = [new_user_id() for _ in range(max(SYNC_CONVS + 2, args.conversations // 2))]
    devices = {u: new_device_id() for u in [sync_user, *pool]}
    assigned = _assign(rng, args.conversations, args.messages + len(IN_FLIGHT) * args.put_messages)
    step_ms = 86_400_000 // args.msgs_per_day
    t0_ms = int(time.time() * 1000) - len(assigned) * step_ms
    convs = []
    for a, b in _pairs(rng, pool, sync_user, args.conversations):
        conv = dm_conversation(a, b)
        convs.append(Conversation(conv, "dm", tuple(sorted((a, b))), t0_ms, shard=home_for(conv, shards)))
    ids, prev = _ids(convs, assigned, shards)
    mine = {i for i, c in enumerate(convs) if sync_user in c.members}
    per_shard = [[ids[i] for i, c in enumerate(assigned) if c in mine and shard_of_id(ids[i]) == s]
                 for s in range(shards)]
    sync_shard = max(range(shards), key=lambda s: len(per_shard[s]))
    return Plan(archived=args.messages, put=args.put_messages,
                topped_up=len(assigned) - args.messages - len(IN_FLIGHT) * args.put_messages, shards=shards,
                convs=convs, sync_user=sync_user, devices=devices, conv_of=array("I", assigned), ids=ids, prev=prev,
                side=bytearray(b & 1 for b in rng.randbytes(len(assigned))),
                bodies=[_body(rng) for _ in range(BODY_POOL)], t0_ms=t0_ms, step_ms=step_ms,
                hot_ids=[ids[i] for i, c in enumerate(assigned) if c == 0],
                sync_shard=sync_shard, sync_ids=per_shard[sync_shard])


def describe(plan: Plan) -> dict[str, Any]:
    bucket_ms = Settings().cassandra_bucket_s * 1000
    sizes = [len(b.encode()) for b in plan.bodies]
    return {
        "messages": plan.total, "shards": plan.shards, "messages_per_shard": plan.stream_lasts(plan.total),
        "archived": plan.archived, "put_per_level": plan.put, "topped_up": plan.topped_up,
        "conversations": len(plan.convs), "users": len(plan.devices), "hot_shares": HOT_SHARES,
        "read_conversation_messages": len(plan.hot_ids),
        "read_conversation_buckets": len({(plan.t0_ms + n * plan.step_ms) // bucket_ms
                                          for n in range(1, plan.total + 1) if plan.conv_of[n - 1] == 0}),
        "sync_user_conversations": sum(plan.sync_user in c.members for c in plan.convs),
        "sync_user_messages_in_sync_shard": len(plan.sync_ids), "sync_shard": plan.sync_shard,
        "span_days": round(plan.total * plan.step_ms / 86_400_000, 1),
        "body_bytes": {"min": min(sizes), "mean": round(sum(sizes) / len(sizes), 1), "max": max(sizes),
                       "distinct": BODY_POOL},
    }
