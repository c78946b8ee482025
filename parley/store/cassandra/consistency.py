"""Which consistency levels let sync trust the store: every read must meet the archiver's writes.

Nodes read history below the archiver's ack floor and trust it complete: a message the read misses is
skipped for good (the device's cursor moves past it). So whichever datacenter the archiver writes
through and whichever datacenter a node reads in, some replica the read waits for must be one the write
waited for. Within one datacenter that is the usual reads + writes > replicas; across datacenters a
``LOCAL_*`` write says nothing about the other datacenters, so the archiver has to write at
``EACH_QUORUM`` (or ``ALL``) for ``LOCAL_QUORUM`` readers everywhere (ADR 0007).

Pure: a replication map and level names in, ``ParleyError(bad_setting)`` naming the setting out. The
check is exhaustive rather than clever: for every (writer DC, reader DC) pair it lets an adversary pick
how many replicas each request reached in each datacenter and looks for a pick with no overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product

from parley.errors import ParleyError

# what a request at each level waits for: per-datacenter minimums, or a total over all replicas
LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM", "EACH_QUORUM")
NOT_FOR_READS = ("ANY",)
# a (per-DC minimum, total minimum) demand
Demand = tuple[dict[str, int], int]


def replicas_by_dc(replication: Mapping[str, str | int]) -> dict[str, int]:
    """``{dc: rf}`` of a replication map; SimpleStrategy is one datacenter (``*``) as far as levels go."""
    if replication.get("class") == "SimpleStrategy":
        return {"*": int(replication["replication_factor"])}
    return {dc: int(rf) for dc, rf in replication.items() if dc != "class" and int(rf) > 0}


def _quorum(n: int) -> int:
    return n // 2 + 1


def demand(level: str, rf: Mapping[str, int], local: str) -> Demand:
    """The replicas a request at ``level`` coordinated in datacenter ``local`` waits for."""
    total = sum(rf.values())
    per_dc = {"LOCAL_ONE": {local: 1}, "LOCAL_QUORUM": {local: _quorum(rf[local])},
              "EACH_QUORUM": {dc: _quorum(n) for dc, n in rf.items()}, "ALL": dict(rf)}
    if level in per_dc:
        return per_dc[level], 0
    return {}, {"ANY": 0, "ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": _quorum(total)}[level]


def _picks(need: Demand, rf: Mapping[str, int]) -> list[dict[str, int]]:
    """Every per-datacenter count of replicas that meets the demand (a few hundred at most)."""
    dcs = list(rf)
    out = []
    for counts in product(*(range(rf[dc] + 1) for dc in dcs)):
        pick = dict(zip(dcs, counts, strict=True))
        if all(pick[dc] >= n for dc, n in need[0].items()) and sum(counts) >= need[1]:
            out.append(pick)
    return out


def always_overlap(write: Demand, read: Demand, rf: Mapping[str, int]) -> bool:
    """True if every write meeting ``write`` shares a replica with every read meeting ``read``:
    in a datacenter of n replicas, a of them written and b read share at least a + b - n."""
    reads = _picks(read, rf)
    return all(any(w[dc] + r[dc] > rf[dc] for dc in rf) for w in _picks(write, rf) for r in reads)


def missed_pair(write_level: str, read_level: str, rf: Mapping[str, int]) -> tuple[str, str] | None:
    """A (writer DC, reader DC) where a read can miss an acknowledged write, or None if there is none."""
    for writer, reader in product(rf, rf):
        if not always_overlap(demand(write_level, rf, writer), demand(read_level, rf, reader), rf):
            return writer, reader
    return None


def _level(name: str, setting: str, *, read: bool) -> str:
    level = name.upper()
    if level not in LEVELS or (read and level in NOT_FOR_READS):
        raise ParleyError(f"PARLEY_{setting}={name!r} is not a consistency level for "
                          f"{'reads' if read else 'writes'} (LOCAL_QUORUM, EACH_QUORUM, QUORUM, ONE, ...)",
                          code="bad_setting")
    return level


def check(replication: Mapping[str, str | int], read_level: str, write_level: str) -> None:
    """Refuse levels with which a reader in some datacenter can miss what the archiver wrote."""
    read = _level(read_level, "CASSANDRA_CONSISTENCY", read=True)
    write = _level(write_level or read_level, "CASSANDRA_WRITE_CONSISTENCY" if write_level else
                   "CASSANDRA_CONSISTENCY", read=False)
    rf = replicas_by_dc(replication)
    missed = missed_pair(write, read, rf)
    if missed is None:
        return
    writer, reader = missed
    if len(rf) > 1:
        raise ParleyError(
            f"PARLEY_CASSANDRA_CONSISTENCY={read} with PARLEY_CASSANDRA_WRITE_CONSISTENCY={write} and replicas "
            f"{rf}: a read in {reader} can miss a message written through {writer}, and sync would skip it: "
            "write at EACH_QUORUM (PARLEY_CASSANDRA_WRITE_CONSISTENCY) and read at LOCAL_QUORUM",
            code="bad_setting")
    raise ParleyError(
        f"PARLEY_CASSANDRA_CONSISTENCY={read} (writes at {write}) with {sum(rf.values())} replicas can read a "
        "replica that missed a write, and sync would skip messages: use LOCAL_QUORUM (or QUORUM)",
        code="bad_setting")
