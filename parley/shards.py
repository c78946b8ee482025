"""Stream shards: how conversations, message ids and device positions map onto K JetStream streams. Pure.

Invariants:
- A deployment has K shard streams (``PARLEY_SHARDS``, at most ``MAX_SHARDS``), ``<base>_<i>`` capturing
  ``msg.<i>.>``; each republishes to ``dlv.<conversation>``. Order is per shard, so per conversation.
- A conversation lives in one shard for ever: its *home*, chosen when it is created
  (``home_for``, a stable hash over the K of that day) and stored with it. Raising K later sends only
  new conversations to the new shards; nothing moves, so nothing is reordered or lost.
- A message id is ``pos << SHARD_BITS | shard`` where ``pos`` is the sequence its shard stream gave it:
  unique, and increasing within a conversation (one shard, stream order) — not comparable across
  conversations of different shards. ``prev`` is the previous id of the same conversation (0: none).
- A device's position is a ``Vector``: per shard, the stream sequence up to which the device has every
  message of its conversations in that shard. Shards a vector does not name are at 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from parley.ids import DELIVERY_PREFIX, MSG_PREFIX, ConversationId

SHARD_BITS = 6
MAX_SHARDS = 1 << SHARD_BITS
_MASK = MAX_SHARDS - 1

Vector = Mapping[int, int]  # shard -> stream sequence


def pack(shard: int, pos: int) -> int:
    return pos << SHARD_BITS | shard


def shard_of_id(id: int) -> int:
    return id & _MASK


def pos_of_id(id: int) -> int:
    return id >> SHARD_BITS


def home_for(conv: str, shards: int) -> int:
    """The shard a new conversation is homed in: a stable hash (the same in every process and release)."""
    return home_in(conv, range(shards))


def home_in(conv: str, shards: Sequence[int]) -> int:
    """One of ``shards`` (a region's, ``parley.layout``) for a new conversation, by the same stable hash."""
    digest = hashlib.blake2b(conv.encode(), digest_size=8).digest()
    return shards[int.from_bytes(digest, "big") % len(shards)]


def stream_of(base: str, shard: int) -> str:
    return f"{base}_{shard}"


def shard_of_stream(base: str, stream: str) -> int | None:
    prefix = base + "_"
    if not stream.startswith(prefix) or not stream[len(prefix):].isdigit():
        return None
    return int(stream[len(prefix):])


def shard_subjects(shard: int) -> str:
    """What shard ``shard``'s stream captures."""
    return f"{MSG_PREFIX}{shard}.>"


def message_subject(shard: int, conv: str) -> str:
    return f"{MSG_PREFIX}{shard}.{conv}"


def conversation_of_message(subject: str) -> ConversationId:
    """``msg.<shard>.<conv>`` -> conv."""
    return ConversationId(subject.split(".", 2)[2])


def shard_of_message(subject: str) -> int:
    return int(subject.split(".", 2)[1])


def parse_message_subject(subject: str) -> tuple[int, ConversationId]:
    """``msg.<shard>.<conv>`` -> (shard, conv), in one split; ValueError for anything shorter."""
    _, shard, conv = subject.split(".", 2)
    return int(shard), ConversationId(conv)


def delivery_subject(conv: str) -> str:
    return DELIVERY_PREFIX + conv


def user_message_filters(shard: int, user: str, groups: Iterable[str] = ()) -> tuple[str, ...]:
    """Subjects of shard ``shard`` that hold ``user``'s DMs and the given groups (homed there)."""
    p = f"{MSG_PREFIX}{shard}."
    return (f"{p}dm.{user}.*", f"{p}dm.*.{user}", *(p + g for g in groups))


def vmax(a: Vector, b: Vector) -> dict[int, int]:
    return {s: max(a.get(s, 0), b.get(s, 0)) for s in set(a) | set(b)}


def vmin(a: Vector, b: Vector) -> dict[int, int]:
    return {s: min(a.get(s, 0), b.get(s, 0)) for s in set(a) | set(b)}


def covers(a: Vector, b: Vector) -> bool:
    """Every position of ``a`` is at or beyond ``b``'s."""
    return all(a.get(s, 0) >= p for s, p in b.items())


def nonzero(v: Vector) -> dict[int, int]:
    return {s: p for s, p in v.items() if p > 0}
