"""CPU per process over a measured window, as % of one core, and what limited the run.

``CpuMeter.snapshot`` reads every named process (and this one, as ``client``) and the machine at one
instant; ``cpu_share(a, b)`` is pure arithmetic on two snapshots. Invariants: a process that is gone
reads ``None`` and stays out of the sums; ``other_processes`` is what the machine used beyond the
cluster and the client, never below 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parley.loadtest.harness import procfs

CLIENT = "client"
# report order: a name not listed goes after these
ORDER = ("nats-server", "node1", "node2", "archiver", "api", "discovery", "presence", "pusher", "cassandra")


@dataclass(frozen=True)
class Snapshot:
    t: float  # perf_counter
    cpu_s: dict[str, float | None]  # by process name, the client last
    machine_busy_s: float


class CpuMeter:
    def __init__(self, pids: Mapping[str, int]) -> None:
        rank = {name: i for i, name in enumerate(ORDER)}
        self.pids = {**dict(sorted(pids.items(), key=lambda kv: rank.get(kv[0], len(ORDER)))), CLIENT: os.getpid()}

    def snapshot(self) -> Snapshot:
        return Snapshot(time.perf_counter(), {name: procfs.cpu_seconds(pid) for name, pid in self.pids.items()},
                        procfs.machine_busy_seconds())


def cpu_seconds_between(a: Snapshot, b: Snapshot) -> dict[str, float]:
    """CPU seconds each process used between the snapshots (processes read in both only)."""
    return {k: round(y - x, 3) for k, x in a.cpu_s.items() if x is not None and (y := b.cpu_s.get(k)) is not None}


def cpu_share(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """% of one core per process, the cluster's total, the machine's, and a verdict on the bottleneck."""
    wall = b.t - a.t
    per: dict[str, float | None] = {}
    for name, x in a.cpu_s.items():
        y = b.cpu_s.get(name)
        per[name] = None if x is None or y is None or wall <= 0 else round(100 * (y - x) / wall, 1)
    machine = round(100 * (b.machine_busy_s - a.machine_busy_s) / wall, 1) if wall > 0 else None
    cluster = round(sum(v for k, v in per.items() if v is not None and k != CLIENT), 1)
    client = per.get(CLIENT) or 0.0
    servers = {k: v for k, v in per.items() if k != CLIENT and v is not None}
    everyone = {k: v for k, v in per.items() if v is not None}
    capacity = 100 * (os.cpu_count() or 1)
    busiest = max(servers, key=lambda k: servers[k]) if servers else None
    return {
        "verdict": verdict(busiest, servers.get(busiest) if busiest else None, machine, capacity),
        "wall_s": round(wall, 2),
        "per_process": per,
        "cluster_total": cluster,
        "client": client,
        "machine_busy": machine,  # all processes on the machine, % of one core
        "other_processes": None if machine is None else round(max(0.0, machine - cluster - client), 1),
        "capacity": capacity,
        "busiest_server": busiest,
        "busiest_overall": max(everyone, key=lambda k: everyone[k]) if everyone else None,
    }


def verdict(busiest: str | None, top: float | None, machine: float | None, capacity: int) -> str:
    if busiest and top is not None and top >= 90 and busiest != "nats-server":
        return f"{busiest} is CPU-bound (one Python process, one core)"
    if machine is not None and machine >= 0.9 * capacity:
        return "all cores were busy (>= 90% of the machine): the machine's CPU is the limit"
    return "no process and not the machine is CPU-bound"


def cpu_ms_per(cpu: dict[str, Any], count: int, names: tuple[str, ...]) -> dict[str, float | None]:
    """CPU milliseconds per operation for ``names``, from a ``cpu_share`` over which ``count`` happened."""
    out: dict[str, float | None] = {}
    for name in names:
        v = cpu["per_process"].get(name)
        out[name] = round(v / 100 * cpu["wall_s"] * 1000 / count, 4) if v is not None and count else None
    return out
