"""Presence partitions: which worker handles whose heartbeats. Pure: no I/O, the caller passes ``now``.

Users fall into ``partitions`` partitions by a stable hash of their id (CRC-32, the same in every
process and release; Python's ``hash`` is salted per process). Nodes publish each partition's beats on
its own subject (``hb.<p>.<node>``), so only the partition's owner receives them.

A worker owns a partition while it holds the partition's lease: a key ``p.<p>`` in a KV bucket whose
entries expire ``lease_s`` after their last write. The owner rewrites (renews) it every round, with
compare-and-set on the revision it last wrote, so two workers never both believe they hold one: a
worker whose renewal fails, or that has not renewed for ``lease_s`` (NATS away), drops the partition
before anyone else can create the key again. Live workers announce themselves the same way (``w.<id>``).

``plan`` is one round's decision for one worker: keep at most a fair share (``ceil(P / workers)``),
release the rest (highest partitions first) so a joining worker can take them, and take free
partitions (no lease) up to the share. Every worker runs the same rule, so the partitions settle
evenly; a dead worker's leases expire and the others take its partitions on their next rounds.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

PARTITION_KEY, WORKER_KEY = "p.", "w."


def partition_of(user: str, partitions: int) -> int:
    return zlib.crc32(user.encode()) % partitions


def partition_key(p: int) -> str:
    return f"{PARTITION_KEY}{p}"


def parse_partition_key(key: str) -> int | None:
    tail = key[len(PARTITION_KEY):] if key.startswith(PARTITION_KEY) else ""
    return int(tail) if tail.isdigit() else None


def worker_key(worker: str) -> str:
    return WORKER_KEY + worker


def fair_share(partitions: int, workers: int) -> int:
    return math.ceil(partitions / max(1, workers))


@dataclass(frozen=True)
class Plan:
    take: tuple[int, ...]
    release: tuple[int, ...]


def plan(me: str, partitions: int, owners: dict[int, str], workers: set[str]) -> Plan:
    """This round's moves for worker ``me``, given who holds each partition's lease now (``owners``,
    partitions without a lease absent) and the live workers (``me`` counts even if not listed yet)."""
    share = fair_share(partitions, len(workers | {me}))
    mine = sorted(p for p, owner in owners.items() if owner == me)
    if len(mine) > share:
        return Plan(take=(), release=tuple(mine[share:]))
    free = [p for p in range(partitions) if p not in owners]
    # start where this worker's name points, so workers joining together try different partitions first
    start = partition_of(me, partitions) if partitions else 0
    free.sort(key=lambda p: (p - start) % partitions)
    return Plan(take=tuple(free[:share - len(mine)]), release=())


@dataclass
class Lease:
    revision: int  # the KV revision of our last write: the next renewal must find exactly this
    renewed_at: float  # when that write was confirmed (seconds, the caller's monotonic clock)


@dataclass
class LeaseBook:
    """The partitions this worker holds, and when each must be given up if not renewed."""

    lease_s: float
    held: dict[int, Lease] = field(default_factory=dict)

    def took(self, p: int, revision: int, now: float) -> None:
        self.held[p] = Lease(revision, now)

    def renewed(self, p: int, revision: int, now: float) -> None:
        if p in self.held:
            self.held[p] = Lease(revision, now)

    def lost(self, p: int) -> None:
        self.held.pop(p, None)

    def expiring(self, now: float, margin: float) -> list[int]:
        """Partitions not renewed for ``lease_s - margin``: the key may expire any moment, and another
        worker may create it, so stop handling them now."""
        return sorted(p for p, lease in self.held.items() if now - lease.renewed_at >= self.lease_s - margin)

    def owned(self) -> list[int]:
        return sorted(self.held)
