"""Parley's benchmark: cross-node DM throughput, end-to-end latency and CPU per process.

    .venv/bin/python -m parley.loadtest.bench [--pairs N] [--seconds S] [--rate R]

What one run does, all on 127.0.0.1 and bounded in count and time:

1. Starts its own cluster with ``parley up`` (free ports, a temp run dir, the per-user rate limit
   raised so it measures capacity, not limits) and waits for "Parley is up.".
2. Signs up N sender/receiver pairs, makes each pair friends and opens their DM. Senders connect to
   node1 and receivers to node2, so every message crosses nodes through NATS.
3. Baseline: raw NATS core publish→subscribe (nats-py, the cluster's nats-server), same rate, count
   and body size. It is the floor Parley's latency adds to.
4. The Parley run: senders send at a fixed offered rate (open loop, round-robin over pairs) for
   ``--seconds`` after a ``--warmup`` that is not counted. Each body carries its send time
   (``time.perf_counter_ns``, shared by sender and receiver in this process), so the receiver
   measures end-to-end latency. Acks (``sent``), deliveries and losses (acked but not delivered
   within ``--drain`` seconds after the run) are counted; CPU is sampled per cluster process and for
   this client over the measured window.
5. A max-throughput pass, the main run being its first point: the offered rate steps up (``--steps``)
   until a step is not sustained (delivered < 90% of offered, p99 > 1 s, or a loss), or down
   (75%, 50%, ... of ``--rate``) when the main run already was not; then ``--refine`` steps halfway
   between the best sustained and the lowest unsustained rate. The highest sustained delivered rate
   is reported. The cluster is drained between steps.
6. Prints a table and appends one JSON line to ``loadtest/results/bench.jsonl``.

The load generator shares the machine with the cluster; its own CPU is reported so a saturated
client is visible. Nothing here asserts on timing: the exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from parley.tools.client import Api, ApiError, Device

from parley.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "bench.jsonl"
# Another cluster may be running on the default ports: never use them (Settings' *_port defaults too).
DEFAULT_PORTS = {4222, 8070, 8075, 8080, 8090, 8091} | {
    int(f.default) for f in dataclasses.fields(Settings) if f.name.endswith("_port") and isinstance(f.default, int)}
RATE_UNLIMITED = "100000"
PASSWORD = "bench-password-0001"
MAX_PAIRS, MAX_SECONDS, MAX_RATE = 1000, 600, 200_000
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SETTLE_S = 15.0  # after the loss deadline, wait this long at most for a backlog to clear
SEP = "|"


class BenchError(Exception):
    """Something that makes the run meaningless (cluster would not start, setup failed...)."""


# ---- ports and the cluster ---------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as s:  # and nothing answers there (a listener on another address)
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_port(taken: set[int]) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken and port not in DEFAULT_PORTS and _port_free(port):
            return port
    raise BenchError("could not find a free loopback port")


def up_port_flags() -> list[str]:
    """The ``--<name>-port`` options ``parley up`` has (asked, so a new one never falls back to its default)."""
    out = subprocess.run([sys.executable, "-m", "parley", "up", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, env=_cluster_env())
    if out.returncode != 0:
        raise BenchError(f"parley up --help failed: {out.stderr.strip()}")
    flags = sorted(set(re.findall(r"--([a-z][a-z-]*)-port\b", out.stdout)))
    if "node" not in flags or "nats" not in flags:
        raise BenchError(f"parley up has no --node-port/--nats-port: {out.stdout}")
    return flags


def pick_ports(flags: list[str], nodes: int = 2) -> dict[str, int]:
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for name in flags:
        if name != "node":
            ports[name] = _free_port(taken)
            taken.add(ports[name])
    for _ in range(100):  # the nodes take node_port, node_port + 1, ...
        port = _free_port(taken)
        rest = [port + i for i in range(1, nodes)]
        if all(p < 65536 and p not in taken and p not in DEFAULT_PORTS and _port_free(p) for p in rest):
            ports["node"] = port
            return ports
    raise BenchError("could not find consecutive free loopback ports for the nodes")


@dataclass
class ClusterProc:
    name: str
    proc: psutil.Process


@dataclass
class Cluster:
    run_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[str]
    output: list[str]
    reader: threading.Thread
    procs: list[ClusterProc] = field(default_factory=list)
    unexpected_listeners: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['nats']}"

    def node_url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.ports['node'] + i}/ws"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"parley up exited with {self.proc.returncode} during the run:\n"
                             + "".join(self.output[-20:]))


def _cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_RATE_PER_S=RATE_UNLIMITED, PARLEY_RATE_BURST=RATE_UNLIMITED, PARLEY_LOG_LEVEL="INFO")
    return env


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench dies, even by SIGKILL, so no cluster outlives it (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_cluster(parent: Path, attempts: int = 3) -> Cluster:
    """``parley up`` on free ports; retried with new ports if another process took one meanwhile."""
    last_error = ""
    flags = up_port_flags()
    for attempt in range(1, attempts + 1):
        run_dir = Path(tempfile.mkdtemp(prefix=f"run{attempt}-", dir=parent))
        ports = pick_ports(flags)
        cmd = [sys.executable, "-m", "parley", "up", "--run-dir", str(run_dir), "--nodes", "2"]
        for name, port in ports.items():
            cmd += [f"--{name}-port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_cluster_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, preexec_fn=_die_with_parent)
        output: list[str] = []
        up = threading.Event()

        def read(proc: subprocess.Popen[str] = proc, output: list[str] = output, up: threading.Event = up) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:  # keep draining so the pipe never fills
                output.append(line)
                if line.startswith("Parley is up."):
                    up.set()
            up.set()

        reader = threading.Thread(target=read, name="parley-up-reader", daemon=True)
        reader.start()
        cluster = Cluster(run_dir, ports, proc, output, reader)
        try:
            up.wait(START_TIMEOUT_S)
            if cluster.alive() and any(line.startswith("Parley is up.") for line in output):
                time.sleep(0.3)  # the banner is printed after the last child is ready
                cluster.procs = find_processes(cluster)
                check_listeners(cluster)
                return cluster
        except BaseException:  # interrupted, or a listener we did not choose
            stop_cluster(cluster)
            raise
        stop_cluster(cluster)
        last_error = "".join(output) or f"no output in {START_TIMEOUT_S:.0f}s"
        logs = " ".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("*.log"))
        if "address already in use" not in (last_error + logs).lower():
            break
        say(f"  port taken meanwhile; retrying with new ports ({attempt}/{attempts})")
    raise BenchError(f"the cluster did not start:\n{last_error}")


def find_processes(cluster: Cluster) -> list[ClusterProc]:
    """The launcher and its children, named by role (node1/node2 from their PARLEY_NODE_ID)."""
    up = psutil.Process(cluster.proc.pid)
    out = [ClusterProc("parley-up", up)]
    for child in up.children(recursive=True):
        try:
            name = child.name()
            cmd = child.cmdline()
            if "nats-server" in name or (cmd and "nats-server" in cmd[0]):
                role = "nats-server"
            elif len(cmd) >= 2 and cmd[-2] == "parley":  # python -m parley <role>
                role = cmd[-1]
                if role == "node":
                    role = child.environ().get("PARLEY_NODE_ID", "") or f"node?{child.pid}"
            else:
                role = f"{name}:{child.pid}"
        except psutil.Error:
            continue
        out.append(ClusterProc(role, child))
    order = {n: i for i, n in enumerate(["nats-server", "node1", "node2", "archiver", "api", "discovery"])}
    out.sort(key=lambda p: order.get(p.name, 99 if p.name != "parley-up" else 100))
    return out


def check_listeners(cluster: Cluster) -> None:
    """Every port our processes listen on must be one we chose (never a default another cluster may use)."""
    ours = set(cluster.ports.values()) | {cluster.ports["node"] + 1}
    for p in cluster.procs:
        try:
            conns = p.proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for c in conns:
            if c.status != psutil.CONN_LISTEN or not c.laddr:
                continue
            port = c.laddr.port
            if port in ours:
                continue
            where = f"{p.name} (pid {p.proc.pid}) listens on {c.laddr.ip}:{port}, a port the bench did not choose"
            if port in DEFAULT_PORTS:
                raise BenchError(where + " (a default port another cluster may use): stopping")
            cluster.unexpected_listeners.append(where)
            say(f"  warning: {where}")


def stop_cluster(cluster: Cluster) -> None:
    """SIGTERM to ``parley up`` (it stops its children in reverse order) and wait; kill only our leftovers."""
    try:
        children = psutil.Process(cluster.proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    children += [p.proc for p in cluster.procs if p.name != "parley-up" and p.proc not in children]
    if cluster.proc.poll() is None:
        cluster.proc.send_signal(signal.SIGTERM)
        try:
            cluster.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            say("  parley up did not stop in time; killing it", err=True)
            cluster.proc.kill()
            cluster.proc.wait()
    _, alive = psutil.wait_procs(children, timeout=5)
    for p in alive:  # children of *our* launcher only
        with contextlib.suppress(psutil.Error):
            say(f"  killing leftover {p.pid} {p.name()}", err=True)
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    cluster.reader.join(timeout=2)


# ---- CPU ---------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds per process between two snapshots, as % of one core."""

    def __init__(self, procs: list[ClusterProc]) -> None:
        self.procs = procs
        self.me = psutil.Process()

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": time.perf_counter()}
        for p in [*self.procs, ClusterProc("client", self.me)]:
            try:
                t = p.proc.cpu_times()
                out[p.name] = t.user + t.system
            except psutil.Error:
                out[p.name] = None
        sys_t = psutil.cpu_times()
        out["_machine_busy"] = sys_t.user + sys_t.nice + sys_t.system + getattr(sys_t, "irq", 0) + \
            getattr(sys_t, "softirq", 0) + getattr(sys_t, "steal", 0)
        return out

    @staticmethod
    def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        wall = b["t"] - a["t"]
        per: dict[str, float | None] = {}
        for name in a:
            if name in ("t", "_machine_busy"):
                continue
            x, y = a[name], b.get(name)
            per[name] = None if x is None or y is None or wall <= 0 else round(100 * (y - x) / wall, 1)
        machine = round(100 * (b["_machine_busy"] - a["_machine_busy"]) / wall, 1) if wall > 0 else None
        cluster = round(sum(v for k, v in per.items() if v is not None and k != "client"), 1)
        client = per.get("client") or 0.0
        servers = {k: v for k, v in per.items() if k not in ("client", "parley-up") and v is not None}
        busiest = max(servers, key=lambda k: servers[k]) if servers else None
        everyone = {k: v for k, v in per.items() if v is not None}
        busiest_all = max(everyone, key=lambda k: everyone[k]) if everyone else None
        capacity = 100 * (os.cpu_count() or 1)
        top = per.get(busiest) if busiest else None
        if busiest and top is not None and top >= 90 and busiest != "nats-server":
            verdict = f"{busiest} is CPU-bound (one Python process, one core)"
        elif machine is not None and machine >= 0.9 * capacity:
            verdict = "all cores were busy (>= 90% of the machine): the machine's CPU is the limit"
        else:
            verdict = "no process and not the machine is CPU-bound"
        return {
            "verdict": verdict,
            "wall_s": round(wall, 2),
            "per_process": per,
            "cluster_total": cluster,
            "client": client,
            "machine_busy": machine,  # all processes on the machine, % of one core
            "other_processes": None if machine is None else round(max(0.0, machine - cluster - client), 1),
            "capacity": capacity,
            "busiest_server": busiest,
            "busiest_overall": busiest_all,
        }


# ---- measurement -------------------------------------------------------------------------------


def pct(sorted_ns: list[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return round(sorted_ns[i] / 1e6, 3)


def latency_summary(samples: array[int]) -> dict[str, Any]:
    s = sorted(samples)
    q = len(samples) // 4
    trend = None
    if q >= 20:  # p50 of the last quarter of arrivals over the first: > 1 means a queue was building up
        first, last = sorted(samples[:q]), sorted(samples[-q:])
        trend = round(last[q // 2] / first[q // 2], 2) if first[q // 2] > 0 else None
    return {"n": len(s), "p50_ms": pct(s, 0.50), "p90_ms": pct(s, 0.90), "p99_ms": pct(s, 0.99),
            "max_ms": round(s[-1] / 1e6, 3) if s else None,
            "mean_ms": round(sum(s) / len(s) / 1e6, 3) if s else None, "p50_trend": trend}


@dataclass
class Phase:
    idx: int
    name: str
    kind: str  # parley | nats
    rate: float
    warmup_s: float
    seconds: float
    start: int = 0  # perf_counter_ns
    t0: int = 0  # measured window [t0, t1)
    t1: int = 0
    sent_total: int = 0
    sent: int = 0  # in the window
    skipped: int = 0  # in the window, not sent because too much was in flight
    send_failed: int = 0
    acked: int = 0  # acks received in the window
    delivered: int = 0  # deliveries received in the window
    delivered_total: int = 0
    e2e: array[int] = field(default_factory=lambda: array("q"))  # of messages sent in the window
    ack_lat: array[int] = field(default_factory=lambda: array("q"))
    lag: array[int] = field(default_factory=lambda: array("q"))  # actual send time - scheduled time
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    unacked: int = 0
    undelivered: int = 0
    late: int = 0  # delivered after the loss deadline
    cpu: dict[str, Any] = field(default_factory=dict)
    drain_s: float = 0.0
    settle_s: float = 0.0
    backlog_left: int = 0

    def in_window(self, t: int) -> bool:
        return self.t0 <= t < self.t1

    def result(self) -> dict[str, Any]:
        window = (self.t1 - self.t0) / 1e9 if self.t1 > self.t0 else self.seconds
        offered = self.rate * window
        out: dict[str, Any] = {
            "name": self.name,
            "offered_rate": self.rate,
            "window_s": round(window, 3),
            "offered": round(offered),
            "sent": self.sent,
            "sent_total": self.sent_total,
            "skipped_inflight_cap": self.skipped,
            "send_failed": self.send_failed,
            "sent_rate": round(self.sent / window, 1),
            "delivered_rate": round(self.delivered / window, 1),
            "delivered_ratio": round(self.delivered / offered, 4) if offered else None,
            # the generator could not offer the rate (not because of the in-flight cap): client-bound
            "client_limited": self.sent < 0.95 * offered and self.skipped == 0,
            "e2e": latency_summary(self.e2e),
            "client_send_lag": latency_summary(self.lag),
            "cpu": self.cpu,
            "drain_s": round(self.drain_s, 2),
        }
        rate = self.delivered / window
        out["cpu_ms_per_delivered_msg"] = {
            k: round(v * 10 / rate, 3) for k, v in self.cpu.get("per_process", {}).items() if v is not None and rate
        } | ({"cluster_total": round(self.cpu["cluster_total"] * 10 / rate, 3)} if rate and self.cpu else {})
        if self.kind == "parley":
            out.update(settle_s=round(self.settle_s, 2), backlog_left_after_settle=self.backlog_left)
        if self.kind == "parley":
            out.update(acked_rate=round(self.acked / window, 1), ack_latency=latency_summary(self.ack_lat),
                       lost=self.lost, unacked=self.unacked, late=self.late, errors=dict(self.errors))
        else:
            out.update(undelivered=self.undelivered)
        return out


class BenchDevice(Device):
    """A ``Device`` that reports to the bench instead of keeping every frame, and acks cumulatively
    (one ack frame for what arrived in one loop iteration; acks are cumulative in the protocol)."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, bench: Bench, pair: int,
                 receiver: bool) -> None:
        super().__init__(http, url, token)
        self.bench, self.pair, self.receiver = bench, pair, receiver
        self.ack_upto = 0
        self._ack_due = False
        self.last_id = 0
        self.received = 0
        self.out_of_order = 0
        self.seen: set[int] = set()

    def _on_frame(self, f: dict[str, Any]) -> None:
        kind = f.get("type")
        if kind == "msg":
            now = time.perf_counter_ns()
            mid = f["id"]
            if mid in self.seen:  # a re-send (after a sync); the protocol says to drop it
                self.duplicates += 1
            else:
                self.seen.add(mid)
                if mid < self.last_id:  # new, but below an id already received: order broken
                    self.out_of_order += 1
                self.last_id = max(self.last_id, mid)
                self.received += 1
                if self.receiver:
                    self.bench.on_delivery(mid, f["body"], now)
            if self.synced.is_set():
                self._schedule_ack(mid)
        elif kind == "ack":
            self.bench.on_ack(f, time.perf_counter_ns())
        elif kind == "error":
            self.bench.on_error(f)
            self.errors.append(f)
        else:
            super()._on_frame(f)

    def _schedule_ack(self, mid: int) -> None:
        self.ack_upto = max(self.ack_upto, mid)
        if not self._ack_due:
            self._ack_due = True
            asyncio.get_running_loop().call_soon(self._flush_ack)

    def _flush_ack(self) -> None:
        self._ack_due = False
        asyncio.get_running_loop().create_task(self._ack(self.ack_upto))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.phases: list[Phase] = []
        self.cur: Phase | None = None
        self.pending: dict[str, tuple[int, int]] = {}  # cid -> (phase idx, send ns), waiting for ack/error
        self.undelivered: dict[int, int] = {}  # acked message id -> phase idx, not yet at the receiver
        self.delivered_early: set[int] = set()  # delivered before its ack arrived
        self.lost_ids: set[int] = set()
        self.inflight = 0  # sent, not yet delivered or failed
        self.nats_seen = 0

    # -- Parley callbacks
    def _count_delivery(self, parts: list[Any], now: int) -> Phase | None:
        """Count one delivery whose payload starts with '<phase>|<sent_at>'; None if not ours."""
        try:
            phase = self.phases[int(parts[0])]
            sent_at = int(parts[1])
        except (ValueError, IndexError):
            return None
        phase.delivered_total += 1
        cur = self.cur
        if cur is not None and cur.in_window(now):
            cur.delivered += 1
        if phase.in_window(sent_at):
            phase.e2e.append(now - sent_at)
        return phase

    def on_delivery(self, mid: int, body: str, now: int) -> None:
        self.inflight -= 1
        phase = self._count_delivery(body.split(SEP, 3), now)
        if phase is None:
            return
        if self.undelivered.pop(mid, None) is None:
            if mid in self.lost_ids:
                self.lost_ids.discard(mid)
                phase.late += 1
            else:
                self.delivered_early.add(mid)

    def on_ack(self, f: dict[str, Any], now: int) -> None:
        entry = self.pending.pop(f.get("cid", ""), None)
        if entry is None:
            return
        idx, sent_at = entry
        phase = self.phases[idx]
        cur = self.cur
        if cur is not None and cur.in_window(now):
            cur.acked += 1
        if phase.in_window(sent_at):
            phase.ack_lat.append(now - sent_at)
        mid = int(f["id"])
        if mid in self.delivered_early:
            self.delivered_early.discard(mid)
        else:
            self.undelivered[mid] = idx

    def on_error(self, f: dict[str, Any]) -> None:
        entry = self.pending.pop(f.get("ref", ""), None) if f.get("ref") else None
        phase = self.phases[entry[0]] if entry else self.cur
        if phase is not None:
            phase.errors[str(f.get("code"))] += 1
        if entry is not None:
            self.inflight -= 1

    # -- NATS baseline callback
    def on_nats(self, data: bytes, now: int) -> None:
        self.inflight -= 1
        self.nats_seen += 1
        self._count_delivery(data.split(b"|", 3), now)

    # -- the load
    def new_phase(self, name: str, kind: str, rate: float, warmup_s: float, seconds: float) -> Phase:
        phase = Phase(len(self.phases), name, kind, rate, warmup_s, seconds)
        self.phases.append(phase)
        return phase

    def body(self, phase: Phase, sent_at: int, pair: int, n: int) -> str:
        head = f"{phase.idx}{SEP}{sent_at}{SEP}{pair}{SEP}{n}{SEP}"
        size = self.args.body_bytes
        return head + "x" * max(0, size - len(head))

    async def drive(self, phase: Phase, senders: int, send: Any, cpu: CpuMeter, cluster: Cluster) -> None:
        """Offer ``phase.rate`` msg/s round-robin over ``senders`` (open loop, 1 ms ticks)."""
        per_ns = phase.rate / 1e9
        cap = self.args.max_inflight
        phase.start = start = time.perf_counter_ns()
        phase.t0 = start + int(phase.warmup_s * 1e9)
        phase.t1 = phase.t0 + int(phase.seconds * 1e9)
        self.cur = phase
        before: dict[str, Any] | None = None
        k = 0
        last_check = start
        while True:
            now = time.perf_counter_ns()
            if before is None and now >= phase.t0:
                before = cpu.snapshot()
            if now >= phase.t1:
                break
            if now - last_check > 500_000_000:
                cluster.check()
                last_check = now
            due = int((now - start) * per_ns) + 1
            burst = 0
            while k < due:
                scheduled = start + int(k / per_ns)
                pair = k % senders
                k += 1
                t = time.perf_counter_ns()
                if t >= phase.t1:
                    break
                counted = t >= phase.t0
                if self.inflight >= cap:
                    if counted:
                        phase.skipped += 1
                    continue
                try:
                    await send(phase, pair, k, t)
                except (ConnectionError, RuntimeError, OSError) as err:
                    phase.send_failed += 1
                    phase.errors[f"send:{type(err).__name__}"] += 1
                    continue
                self.inflight += 1
                phase.sent_total += 1
                if counted:
                    phase.sent += 1
                    phase.lag.append(t - scheduled)
                burst += 1
                if burst % 200 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.001)
        after = cpu.snapshot()
        phase.cpu = CpuMeter.diff(before or after, after)

    async def drain_parley(self, phase: Phase) -> None:
        """Wait up to --drain seconds for every ack and every acked message's delivery."""
        t = time.monotonic()
        deadline = t + self.args.drain
        while time.monotonic() < deadline and (self.pending or self.undelivered):
            await asyncio.sleep(0.02)
        phase.drain_s = time.monotonic() - t
        for _, (idx, _) in self.pending.items():
            self.phases[idx].unacked += 1
        self.pending.clear()  # a late ack for these is ignored
        for mid, idx in self.undelivered.items():
            self.phases[idx].lost += 1
            self.lost_ids.add(mid)
        self.undelivered.clear()
        self.cur = None
        # Let an overload backlog clear before the next phase (what arrives now counts as late).
        t = time.monotonic()
        while self.inflight > 0 and time.monotonic() < t + SETTLE_S:
            await asyncio.sleep(0.05)
        phase.settle_s = time.monotonic() - t
        phase.backlog_left = max(0, self.inflight)
        self.inflight = 0

    async def drain_nats(self, phase: Phase, expected: int) -> None:
        t = time.monotonic()
        deadline = t + self.args.drain
        while time.monotonic() < deadline and self.nats_seen < expected:
            await asyncio.sleep(0.02)
        phase.drain_s = time.monotonic() - t
        phase.undelivered = max(0, expected - self.nats_seen)
        self.inflight = 0
        self.cur = None


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Pair:
    sender: dict[str, Any]
    receiver: dict[str, Any]
    conv: str = ""
    sdev: BenchDevice | None = None
    rdev: BenchDevice | None = None


async def login(api: Api, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        try:
            return await api.login(name, PASSWORD, device_name="bench")
        except ApiError as err:  # discovery may not have seen the nodes' first heartbeat yet
            if err.code != "no_node" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def setup_pairs(api: Api, n: int) -> list[Pair]:
    tag = secrets.token_hex(3)
    names = [(f"b{tag}s{i}", f"b{tag}r{i}") for i in range(n)]
    gate = asyncio.Semaphore(4)  # the API hashes passwords in its event loop: it serves one at a time
    done = itertools.count(1)
    total = 2 * n

    async def account(name: str) -> dict[str, Any]:
        async with gate:
            await api.signup(name, PASSWORD)
            out = await login(api, name)
        i = next(done)
        if i % 20 == 0 or i == total:
            say(f"  accounts {i}/{total}")
        return out

    logins = await asyncio.gather(*(account(x) for pair in names for x in pair))
    pairs = [Pair(logins[2 * i], logins[2 * i + 1]) for i in range(n)]

    async def befriend(p: Pair) -> None:
        async with gate:
            s, r = p.sender, p.receiver
            await api.call("POST", "/v1/friends", s["token"], {"user_id": r["user"]["id"]})
            state = await api.call("POST", "/v1/friends", r["token"], {"user_id": s["user"]["id"]})
            if state.get("state") != "friends":
                raise BenchError(f"friendship not established: {state}")
            out = await api.call("POST", "/v1/conversations", s["token"], {"user_id": r["user"]["id"]})
            p.conv = out["conversation"]["id"]

    await asyncio.gather(*(befriend(p) for p in pairs))
    return pairs


async def connect_pairs(http: aiohttp.ClientSession, bench: Bench, cluster: Cluster, pairs: list[Pair]) -> None:
    gate = asyncio.Semaphore(20)

    async def one(i: int, p: Pair) -> None:
        async with gate:
            p.sdev = BenchDevice(http, cluster.node_url(0), p.sender["token"], bench, i, receiver=False)
            p.rdev = BenchDevice(http, cluster.node_url(1), p.receiver["token"], bench, i, receiver=True)
            for dev, node in ((p.sdev, "node1"), (p.rdev, "node2")):
                welcome = await dev.connect()
                if welcome.get("node") != node:
                    raise BenchError(f"expected {node} at {dev.url}, got {welcome.get('node')}")
                await asyncio.wait_for(dev.synced.wait(), 10)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))


async def parley_phase(bench: Bench, pairs: list[Pair], cpu: CpuMeter, cluster: Cluster, name: str,
                       rate: float, warmup: float, seconds: float) -> Phase:
    phase = bench.new_phase(name, "parley", rate, warmup, seconds)
    prefix = secrets.token_hex(3)

    async def send(ph: Phase, pair: int, n: int, sent_at: int) -> None:
        p = pairs[pair]
        assert p.sdev is not None and p.sdev.ws is not None
        cid = f"{prefix}-{ph.idx}-{n}"
        body = bench.body(ph, sent_at, pair, n)
        bench.pending[cid] = (ph.idx, sent_at)
        try:
            await p.sdev.ws.send_str(f'{{"type":"send","cid":"{cid}","conv":"{p.conv}","body":"{body}"}}')
        except BaseException:
            bench.pending.pop(cid, None)
            raise

    await bench.drive(phase, len(pairs), send, cpu, cluster)
    await bench.drain_parley(phase)
    cluster.check()
    return phase


async def nats_phase(bench: Bench, cluster: Cluster, cpu: CpuMeter, pairs: int, rate: float, warmup: float,
                     seconds: float) -> Phase:
    import nats

    phase = bench.new_phase("nats-baseline", "nats", rate, warmup, seconds)
    prefix = f"bench.{secrets.token_hex(4)}"  # not under msg.>: core NATS only, no JetStream
    sub_nc = await nats.connect(cluster.nats_url, name="bench-baseline-sub")
    pub_nc = await nats.connect(cluster.nats_url, name="bench-baseline-pub")
    try:
        async def on_msg(msg: Any) -> None:
            bench.on_nats(msg.data, time.perf_counter_ns())

        await sub_nc.subscribe(f"{prefix}.>", cb=on_msg, pending_msgs_limit=10_000_000,
                               pending_bytes_limit=1 << 30)
        await sub_nc.flush()
        subjects = [f"{prefix}.{i}" for i in range(pairs)]
        bench.nats_seen = 0

        async def send(ph: Phase, pair: int, n: int, sent_at: int) -> None:
            await pub_nc.publish(subjects[pair], bench.body(ph, sent_at, pair, n).encode())

        await bench.drive(phase, pairs, send, cpu, cluster)
        await pub_nc.flush()
        await bench.drain_nats(phase, phase.sent_total)
    finally:
        for nc in (pub_nc, sub_nc):
            with contextlib.suppress(Exception):
                await nc.close()
    return phase


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    bench = Bench(args)
    cpu = CpuMeter(cluster.procs)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        api = Api(cluster.api_url, http)
        t = time.monotonic()
        say(f"setup: {args.pairs} pairs ({2 * args.pairs} accounts; the API hashes each password)")
        pairs = await setup_pairs(api, args.pairs)
        setup_s = time.monotonic() - t
        say(f"  done in {setup_s:.1f}s")
        cluster.check()

        say(f"baseline: raw NATS core pub/sub at {args.rate:g} msg/s for {args.warmup:g}+{args.seconds:g}s")
        base = await nats_phase(bench, cluster, cpu, args.pairs, args.rate, args.warmup, args.seconds)

        await connect_pairs(http, bench, cluster, pairs)
        say(f"parley: {args.rate:g} msg/s over {args.pairs} pairs (node1 → node2) for "
            f"{args.warmup:g}+{args.seconds:g}s")
        main = await parley_phase(bench, pairs, cpu, cluster, "parley", args.rate, args.warmup, args.seconds)

        steps: list[Phase] = [main]  # the main run is the first point of the max-throughput pass
        if not args.steps:  # --steps '': no max-throughput pass
            rates, how = [], ""
        elif sustained(main.result()):
            rates = [r for r in args.steps if r > args.rate]
            how = "up"
        else:  # overloaded already: look for a sustained rate below it
            rates = [round(args.rate * f) for f in (0.75, 0.5, 0.35, 0.25)]
            how = "down (the main run was not sustained)"
        if rates:
            say(f"max throughput: stepping {how}: {', '.join(f'{r:g}' for r in rates)} msg/s, "
                f"{args.step_warmup:g}+{args.step_seconds:g}s each")
        for rate in rates:
            step = await parley_phase(bench, pairs, cpu, cluster, f"step-{rate:g}", rate, args.step_warmup,
                                      args.step_seconds)
            steps.append(step)
            r = step.result()
            ok = sustained(r)
            say(f"  {rate:>8g} offered → {r['delivered_rate']:>8.1f} delivered/s, p99 {r['e2e']['p99_ms']} ms, "
                f"{'sustained' if ok else 'not sustained'}")
            if ok != (how == "up"):
                break
        # Narrow the gap between the highest sustained and the lowest unsustained rate (at most 2 more steps).
        for _ in range(args.refine if rates else 0):
            done = [(p.rate, sustained(p.result())) for p in steps]
            good = [r for r, ok in done if ok]
            if not good:
                break
            lo = max(good)
            above = [r for r, ok in done if not ok and r > lo]
            if not above or min(above) - lo <= 0.1 * lo:
                break
            rate = round((lo + min(above)) / 2 / 50) * 50
            step = await parley_phase(bench, pairs, cpu, cluster, f"step-{rate:g}", rate, args.step_warmup,
                                      args.step_seconds)
            steps.append(step)
            r = step.result()
            say(f"  {rate:>8g} offered → {r['delivered_rate']:>8.1f} delivered/s, p99 {r['e2e']['p99_ms']} ms, "
                f"{'sustained' if sustained(r) else 'not sustained'} (refining)")

        devices = [d for p in pairs for d in (p.sdev, p.rdev) if d is not None]
        health = {
            "disconnected": sum(1 for d in devices if d.closed.done()),
            "out_of_order": sum(d.out_of_order for d in devices),
            "duplicates": sum(d.duplicates for d in devices),
            "echoes_to_senders": sum(d.received for p in pairs if (d := p.sdev) is not None),
            "deliveries_to_receivers": sum(d.received for p in pairs if (d := p.rdev) is not None),
        }
        await asyncio.gather(*(d.close() for d in devices), return_exceptions=True)

    m, b = main.result(), base.result()
    step_results = [s.result() for s in steps]
    good = [s for s in step_results if sustained(s)]
    best = max(good, key=lambda s: s["delivered_rate"]) if good else None
    return {
        "setup_s": round(setup_s, 1),
        "parley": m,
        "baseline": b,
        "ratios": {"p50": ratio(m["e2e"]["p50_ms"], b["e2e"]["p50_ms"]),
                   "p99": ratio(m["e2e"]["p99_ms"], b["e2e"]["p99_ms"])},
        "ratios_at_best_sustained": None if best is None else {
            "offered_rate": best["offered_rate"],
            "p50": ratio(best["e2e"]["p50_ms"], b["e2e"]["p50_ms"]),
            "p99": ratio(best["e2e"]["p99_ms"], b["e2e"]["p99_ms"])},
        "max_throughput": {
            "steps": step_results,
            "best_sustained_delivered_rate": best["delivered_rate"] if best else None,
            "at_offered_rate": best["offered_rate"] if best else None,
            "peak_delivered_rate": max(s["delivered_rate"] for s in step_results),
            "limit_reached": any(not sustained(s) for s in step_results),
            "skipped": not args.steps,
        },
        "client_health": health,
    }


def sustained(r: dict[str, Any]) -> bool:
    p99 = r["e2e"]["p99_ms"]
    return (r["delivered_ratio"] or 0) >= 0.9 and p99 is not None and p99 <= 1000 and not r.get("lost")


# ---- machine, logs, report ---------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_info() -> dict[str, Any]:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.rstrip()  # status lines start with a space: keep it
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    outside = [path for path in changed if not path.startswith("loadtest/")]
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(changed), "changed_files": len(changed),
            "changed_outside_loadtest": outside[:50]}


def versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from parley.tools import natsserver

    out: dict[str, Any] = {}
    for pkg in ("nats-py", "aiohttp", "uvloop", "orjson"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    with contextlib.suppress(Exception):
        out["nats-server"] = subprocess.run([natsserver.binary(), "--version"], capture_output=True, text=True,
                                            timeout=10).stdout.strip()
    return out


_ISSUE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|\[(ERR|WRN|FTL)\]")
_STAMP = re.compile(r"^\S+ \S+ |^\[\d+\] \S+ \S+ |\b\d+\b")


def scan_logs(run_dir: Path) -> dict[str, Any]:
    """Warnings and errors in the run dir's logs: counts per file and a few distinct lines."""
    out: dict[str, Any] = {}
    for log in sorted((run_dir / "logs").glob("*.log")):
        counts: Counter[str] = Counter()
        samples: dict[str, str] = {}
        for line in log.read_text(errors="replace").splitlines():
            m = _ISSUE.search(line)
            if not m:
                continue
            counts[m.group(0)] += 1
            key = _STAMP.sub("#", line)[:160]
            if key not in samples and len(samples) < 5:
                samples[key] = line[:300]
        if counts:
            out[log.name] = {"counts": dict(counts), "samples": list(samples.values())}
    return out


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) >= 100 else f"{v:.2f}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else f"{v}{unit}"


def report(record: dict[str, Any]) -> str:
    r = record["results"]
    m, b, a = r["parley"], r["baseline"], record["args"]
    lines = []
    add = lines.append
    add("")
    add(f"Parley benchmark — {a['pairs']} pairs, {a['rate']:g} msg/s offered, {a['seconds']:g}s measured "
        f"(+{a['warmup']:g}s warm-up), body {a['body_bytes']} B, senders on node1 → receivers on node2")
    mi = record["machine"]
    add(f"machine: {mi['cpu_count']} × {mi['cpu_model']}, {mi['memory_gb']} GB, Python {mi['python']}, "
        f"load avg at start {mi['loadavg_at_start']}; git {str(record['git']['commit'])[:10]}"
        + (f" + uncommitted changes to {len(record['git']['changed_outside_loadtest'])} files outside loadtest/"
           if record["git"]["changed_outside_loadtest"] else ""))
    add("")
    w = 26
    add(f"{'':{w}} {'Parley':>12} {'NATS core':>12} {'ratio':>8}")
    add(f"{'sent msg/s':{w}} {fmt(m['sent_rate']):>12} {fmt(b['sent_rate']):>12}")
    add(f"{'acked (sent) msg/s':{w}} {fmt(m['acked_rate']):>12} {'-':>12}")
    add(f"{'delivered msg/s':{w}} {fmt(m['delivered_rate']):>12} {fmt(b['delivered_rate']):>12}")
    for key, label in (("p50_ms", "e2e p50"), ("p90_ms", "e2e p90"), ("p99_ms", "e2e p99"), ("max_ms", "e2e max")):
        rt = ratio(m["e2e"][key], b["e2e"][key])
        add(f"{label + ' (ms)':{w}} {fmt(m['e2e'][key]):>12} {fmt(b['e2e'][key]):>12} "
            f"{(fmt(rt) + '×') if rt is not None else '-':>8}")
    ack = m["ack_latency"]
    add(f"{'ack latency p50/p99 (ms)':{w}} {fmt(ack['p50_ms']) + '/' + fmt(ack['p99_ms']):>12}")
    add(f"{'lost (acked, undelivered)':{w}} {m['lost']:>12} {b['undelivered']:>12}")
    add(f"{'unacked / errors':{w}} {str(m['unacked']) + ' / ' + str(sum(m['errors'].values())):>12}")
    add(f"{'skipped (in-flight cap)':{w}} {m['skipped_inflight_cap']:>12} {b['skipped_inflight_cap']:>12}")
    add(f"{'client send lag p99 (ms)':{w}} {fmt(m['client_send_lag']['p99_ms']):>12} "
        f"{fmt(b['client_send_lag']['p99_ms']):>12}")
    if m["errors"]:
        add(f"errors: {m['errors']}")
    if not sustained(m):
        add("NOTE: the offered rate is above what this machine sustains (see the max-throughput pass below):")
        add("      the latencies above are mostly queueing delay, not Parley's latency at a sustainable load.")
    if m["client_limited"] or b["client_limited"]:
        add("NOTE: the load generator did not reach the offered rate (client-bound)")
    add("")
    cp, cb = m["cpu"], b["cpu"]
    add(f"CPU over the measured window: % of one core (machine capacity {cp.get('capacity')}%), and CPU ms per "
        "delivered message")
    add(f"{'process':{w}} {'Parley %':>12} {'ms/msg':>8} {'NATS core %':>12} {'ms/msg':>8}")
    mp, bp = m.get("cpu_ms_per_delivered_msg", {}), b.get("cpu_ms_per_delivered_msg", {})
    for name, v in cp.get("per_process", {}).items():
        add(f"{name:{w}} {fmt(v):>12} {fmt(mp.get(name)):>8} {fmt(cb.get('per_process', {}).get(name)):>12} "
            f"{fmt(bp.get(name)):>8}")
    add(f"{'cluster total':{w}} {fmt(cp.get('cluster_total')):>12} {fmt(mp.get('cluster_total')):>8} "
        f"{fmt(cb.get('cluster_total')):>12} {fmt(bp.get('cluster_total')):>8}")
    add(f"{'other processes (machine)':{w}} {fmt(cp.get('other_processes')):>12} {'':>8} "
        f"{fmt(cb.get('other_processes')):>12}")
    busiest = cp.get("busiest_server")
    add(f"busiest server process (the bottleneck when overloaded): {busiest} at {fmt(cp['per_process'].get(busiest))}%"
        + (f"; the client itself is at {fmt(cp.get('client'))}%" if cp.get("busiest_overall") == "client" else "")
        + f"; {cp.get('verdict')}")
    add("")
    mt = r["max_throughput"]
    if mt.get("skipped"):
        add("max throughput: skipped (--steps '')")
        add("")
    else:
        add("max throughput (stepped offered rate)")
        add(f"{'run':>5} {'offered':>8} {'sent/s':>9} {'acked/s':>9} {'delivered/s':>11} {'p50 ms':>9} "
            f"{'p99 ms':>9} {'trend':>6} {'lost':>5} {'busiest server':>20} {'client%':>8} {'others%':>8}  sustained")
        for s in mt["steps"]:
            c = s["cpu"]
            bn = c.get("busiest_server")
            top = f"{bn} {fmt(c['per_process'].get(bn))}%"
            run = "main" if s["name"] == "parley" else "step"
            add(f"{run:>5} {s['offered_rate']:>8g} {fmt(s['sent_rate']):>9} {fmt(s['acked_rate']):>9} "
                f"{fmt(s['delivered_rate']):>11} {fmt(s['e2e']['p50_ms']):>9} {fmt(s['e2e']['p99_ms']):>9} "
                f"{fmt(s['e2e']['p50_trend']):>6} {s['lost']:>5} {top:>20} "
                f"{fmt(c.get('client')):>8} {fmt(c.get('other_processes')):>8}  {'yes' if sustained(s) else 'no'}")
        best = mt["best_sustained_delivered_rate"]
        add(f"highest sustained delivered rate: {fmt(best)} msg/s"
            + (f" (offered {mt['at_offered_rate']:g})" if best else "")
            + ("" if mt["limit_reached"] else "  [every step was sustained: the limit is above the last one]"))
        add(f"peak delivered rate (sustained or not): {fmt(mt['peak_delivered_rate'])} msg/s; sustained = "
            "delivered >= 90% of offered, p99 <= 1 s, nothing lost")
        add("trend = p50 of the window's last quarter over its first: well above 1 means a queue was still growing")
        rb = r.get("ratios_at_best_sustained")
        if rb and not sustained(m):
            add(f"Parley/baseline at the highest sustained rate ({rb['offered_rate']:g} msg/s): p50 {fmt(rb['p50'])}×, "
                f"p99 {fmt(rb['p99'])}×")
        add("")
    h = r["client_health"]
    add(f"client: {h['deliveries_to_receivers']:,} deliveries, {h['echoes_to_senders']:,} echoes to senders, "
        f"{h['out_of_order']} out of order, {h['duplicates']} duplicates, {h['disconnected']} disconnected; "
        f"setup {r['setup_s']}s")
    logs = record.get("log_issues") or {}
    if logs:
        add("warnings/errors in the cluster logs: " + ", ".join(f"{k} {v['counts']}" for k, v in logs.items()))
        for k, v in logs.items():
            for s in v["samples"][:3]:
                add(f"  {k}: {s}")
    else:
        add("cluster logs: no warnings or errors")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=50, help="sender/receiver pairs (default 50)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--rate", type=float, default=2000.0, help="offered msg/s over all pairs (default 2000)")
    p.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before measuring (default 2)")
    p.add_argument("--body-bytes", type=int, default=100, help="message body size (default 100)")
    p.add_argument("--drain", type=float, default=5.0,
                   help="seconds after a run for acks/deliveries before a message counts as lost (default 5)")
    p.add_argument("--steps", default="3000,5000,7500,10000",
                   help="max-throughput pass: offered rates above --rate, comma-separated, tried in order after "
                        "the main run (its first point) until one is not sustained; '' skips the max-throughput pass")
    p.add_argument("--refine", type=int, default=2,
                   help="extra steps halfway between the highest sustained and lowest unsustained rate (default 2)")
    p.add_argument("--step-seconds", type=float, default=4.0, help="measured seconds per step (default 4)")
    p.add_argument("--step-warmup", type=float, default=1.0, help="warm-up seconds per step (default 1)")
    p.add_argument("--max-inflight", type=int, default=5000,
                   help="sent but undelivered messages above which sends are skipped (default 5000)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the cluster's data and logs")
    p.add_argument("--no-save", action="store_true", help="do not append to loadtest/results/bench.jsonl")
    args = p.parse_args(argv)
    try:
        args.steps = [float(x) for x in args.steps.split(",") if x.strip()]
    except ValueError:
        p.error("--steps: comma-separated numbers")
    if not 1 <= args.pairs <= MAX_PAIRS:
        p.error(f"--pairs: 1 to {MAX_PAIRS}")
    for name in ("seconds", "step_seconds"):
        if not 0 < getattr(args, name) <= MAX_SECONDS:
            p.error(f"--{name.replace('_', '-')}: more than 0, at most {MAX_SECONDS}")
    if not 0 <= args.warmup <= 60 or not 0 <= args.step_warmup <= 60 or not 0 < args.drain <= 60:
        p.error("--warmup/--step-warmup: 0 to 60; --drain: more than 0, at most 60")
    if not 0 < args.rate <= MAX_RATE or any(not 0 < r <= MAX_RATE for r in args.steps):
        p.error(f"--rate/--steps: more than 0, at most {MAX_RATE}")
    if not 40 <= args.body_bytes <= 4000:
        p.error("--body-bytes: 40 to 4000")
    if not 0 <= args.refine <= 5:
        p.error("--refine: 0 to 5")
    if args.max_inflight < 1:
        p.error("--max-inflight: at least 1")
    return args


def say(*parts: object, err: bool = False) -> None:
    """Print, but never let a closed stdout (``| head``) stop the cleanup."""
    with contextlib.suppress(OSError, ValueError):
        print(*parts, file=sys.stderr if err else sys.stdout, flush=True)


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # run the finally below (stop the cluster) on these too
        signal.signal(sig, _terminate)
    started = time.monotonic()
    record: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git": git_info(),
        "versions": versions(),
        "args": {k: v for k, v in vars(args).items() if k not in ("keep_run_dir", "no_save")},
    }
    parent = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    cluster: Cluster | None = None
    ok = False
    try:
        say(f"starting a cluster (run dir under {parent})")
        cluster = start_cluster(parent)
        say(f"  up: ports {cluster.ports} (nodes take node and node+1); processes "
            f"{', '.join(f'{p.name}={p.proc.pid}' for p in cluster.procs)}")
        try:
            import uvloop

            results = uvloop.run(run(args, cluster))
        except ImportError:
            results = asyncio.run(run(args, cluster))
        record["results"] = results
        ok = True
    except BenchError as err:
        say(f"bench: {err}", err=True)
    except (ApiError, aiohttp.ClientError, ConnectionError, TimeoutError, OSError) as err:
        say(f"bench: {type(err).__name__}: {err}", err=True)
    except KeyboardInterrupt:
        say("bench: interrupted", err=True)
    finally:
        if cluster is not None:
            stop_cluster(cluster)  # first: nothing below may leave the cluster running
            say("cluster stopped")
            record["cluster_exit_code"] = cluster.proc.returncode
            record["cluster_ports"] = cluster.ports
            record["unexpected_listeners"] = cluster.unexpected_listeners
            record["log_issues"] = scan_logs(cluster.run_dir)
        if args.keep_run_dir or not ok:
            say(f"run dir kept: {cluster.run_dir if cluster else parent}")
        else:
            shutil.rmtree(parent, ignore_errors=True)
    if not ok:
        if record.get("log_issues"):
            say(json.dumps(record["log_issues"], indent=1), err=True)
        return 1
    record["duration_s"] = round(time.monotonic() - started, 1)
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    say(report(record))
    if not args.no_save:
        say(f"\nappended to {RESULTS.relative_to(ROOT)}; took {record['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
