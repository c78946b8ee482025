"""The store benchmark's workload (``loadtest.store_bench``): every message id's conversation, sender,
body and time, generated from a seed, so both backends get exactly the same writes and every read's
right answer is known.

DM conversations between random users, five "hot" ones taking 40% of the messages (conversation 0
alone 20%, and at least ``HOT_MIN`` messages, topped up at the end if needed), bodies of about 60-200
bytes from a small pool, timestamps spaced ``86,400,000 / msgs_per_day`` ms apart ending now.
"""

from __future__ import annotations

import argparse
import random
import time
from array import array
from dataclasses import dataclass
from typing import Any

from parley.ids import DeviceId, MessageId, UserId, dm_conversation, message_subject, new_device_id, new_user_id
from parley.messages import encode_payload
from parley.settings import Settings
from parley.store import Conversation, StoredMessage

BATCH = 500  # like the archiver (Settings.archiver_batch)
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
    """Every message id's conversation, sender, body and time; one plan serves both backends."""

    archived: int  # ids 1..archived go through the stream and the archiver
    put: int  # then this many per put_messages level
    topped_up: int  # then this many more in conversation 0, so it holds at least HOT_MIN
    convs: list[Conversation]
    sync_user: UserId
    devices: dict[UserId, DeviceId]
    conv_of: array[int]  # by id - 1
    prev: array[int]
    side: bytearray  # which member sent it
    bodies: list[str]
    t0_ms: int
    step_ms: int
    hot_ids: list[int]  # conversation 0's ids, ascending
    sync_ids: list[int]  # the sync user's ids, ascending

    @property
    def total(self) -> int:
        return len(self.conv_of)

    def put_ids(self, level: int) -> range:
        start = self.archived + level * self.put + 1
        return range(start, start + self.put)

    def topup_ids(self) -> range:
        return range(self.archived + len(IN_FLIGHT) * self.put + 1, self.total + 1)

    def message(self, mid: int) -> StoredMessage:
        conv = self.convs[self.conv_of[mid - 1]]
        sender = conv.members[self.side[mid - 1]]
        return StoredMessage(MessageId(mid), conv.id, self.prev[mid - 1], sender, self.devices[sender],
                             f"{mid * 0x9E3779B97F4A7C15 % 2**64:016x}", self.bodies[mid % BODY_POOL],
                             self.t0_ms + mid * self.step_ms)

    def payload(self, mid: int) -> tuple[str, bytes]:
        m = self.message(mid)
        return message_subject(m.conv), encode_payload(sender=m.sender, device=m.device, cid=m.cid, body=m.body,
                                                       ts=m.ts, prev=m.prev)


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


def build_plan(args: argparse.Namespace) -> Plan:
    rng = random.Random(args.seed)
    sync_user = new_user_id()
    pool = [new_user_id() for _ in range(max(SYNC_CONVS + 2, args.conversations // 2))]
    devices = {u: new_device_id() for u in [sync_user, *pool]}
    assigned = _assign(rng, args.conversations, args.messages + len(IN_FLIGHT) * args.put_messages)
    step_ms = 86_400_000 // args.msgs_per_day
    t0_ms = int(time.time() * 1000) - len(assigned) * step_ms
    convs = [Conversation(dm_conversation(a, b), "dm", tuple(sorted((a, b))), t0_ms)
             for a, b in _pairs(rng, pool, sync_user, args.conversations)]
    last = [0] * len(convs)
    prev = array("q", bytes(8 * len(assigned)))
    for i, c in enumerate(assigned):
        prev[i], last[c] = last[c], i + 1
    mine = {i for i, c in enumerate(convs) if sync_user in c.members}
    return Plan(archived=args.messages, put=args.put_messages,
                topped_up=len(assigned) - args.messages - len(IN_FLIGHT) * args.put_messages, convs=convs,
                sync_user=sync_user, devices=devices, conv_of=array("I", assigned), prev=prev,
                side=bytearray(b & 1 for b in rng.randbytes(len(assigned))),
                bodies=[_body(rng) for _ in range(BODY_POOL)], t0_ms=t0_ms, step_ms=step_ms,
                hot_ids=[i + 1 for i, c in enumerate(assigned) if c == 0],
                sync_ids=[i + 1 for i, c in enumerate(assigned) if c in mine])


def describe(plan: Plan) -> dict[str, Any]:
    bucket_ms = Settings().cassandra_bucket_s * 1000
    sizes = [len(b.encode()) for b in plan.bodies]
    return {
        "ids": plan.total, "archived": plan.archived, "put_per_level": plan.put, "topped_up": plan.topped_up,
        "conversations": len(plan.convs), "users": len(plan.devices), "hot_shares": HOT_SHARES,
        "read_conversation_messages": len(plan.hot_ids),
        "read_conversation_buckets": len({(plan.t0_ms + i * plan.step_ms) // bucket_ms for i in plan.hot_ids}),
        "sync_user_conversations": sum(plan.sync_user in c.members for c in plan.convs),
        "sync_user_messages": len(plan.sync_ids),
        "span_days": round(plan.total * plan.step_ms / 86_400_000, 1),
        "body_bytes": {"min": min(sizes), "mean": round(sum(sizes) / len(sizes), 1), "max": max(sizes),
                       "distinct": BODY_POOL},
    }
