"""The harness's pure parts and /proc readers (loadtest/harness/): known inputs, expected figures; the
readers against this very process, the git rule against a real repository in a temp dir."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest
from parley.loadtest.harness import procfs, wire
from parley.loadtest.harness.latency import latency_summary, percentile
from parley.loadtest.harness.meter import Snapshot, cpu_seconds_between, cpu_share
from parley.loadtest.harness.record import git_state
from parley.loadtest.presence_churn import Churn, presence_stats

MS = 1_000_000


@pytest.mark.parametrize(("q", "expected"), [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (1.0, 1000.0), (0.0, 1.0)])
def test_percentiles_are_nearest_rank_in_ms(q: float, expected: float) -> None:
    assert percentile([i * MS for i in range(1, 1001)], q) == expected


def test_latency_summary_and_its_trend() -> None:
    growing = [i * MS for i in range(1, 101)]  # the last quarter's median (88) over the first's (13)
    s = latency_summary(growing)
    assert (s["n"], s["p50_ms"], s["max_ms"], s["mean_ms"], s["p50_trend"]) == (100, 50.0, 100.0, 50.5, 6.77)
    assert latency_summary([])["p50_ms"] is None and latency_summary([MS] * 10)["p50_trend"] is None


def snap(t: float, busy: float, **cpu: float | None) -> Snapshot:
    return Snapshot(t, dict(cpu), busy)


@pytest.mark.parametrize(("node1", "machine", "verdict"), [
    (0.95, 1.0, "node1 is CPU-bound (one Python process, one core)"),
    (0.5, 0.95 * (os.cpu_count() or 1), "all cores were busy (>= 90% of the machine): the machine's CPU is the limit"),
    (0.5, 1.0, "no process and not the machine is CPU-bound"),
])
def test_cpu_share_names_the_bottleneck(node1: float, machine: float, verdict: str) -> None:
    a = snap(10.0, 100.0, node1=1.0, node2=1.0, gone=1.0, client=1.0)
    b = snap(11.0, 100.0 + machine, node1=1.0 + node1, node2=1.1, gone=None, client=1.2)
    cpu = cpu_share(a, b)
    assert cpu["per_process"] == {"node1": round(100 * node1, 1), "node2": 10.0, "gone": None, "client": 20.0}
    assert (cpu["cluster_total"], cpu["busiest_server"]) == (round(100 * node1 + 10, 1), "node1")
    assert cpu["verdict"] == verdict
    assert cpu["other_processes"] == max(0.0, round(100 * machine - cpu["cluster_total"] - 20.0, 1))
    assert cpu_seconds_between(a, b) == {"node1": round(node1, 3), "node2": 0.1, "client": 0.2}


def test_proc_readers_see_this_process() -> None:
    before, busy = procfs.cpu_seconds(os.getpid()), procfs.machine_busy_seconds()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # spend CPU, so both clocks move
        pass
    assert (procfs.cpu_seconds(os.getpid()) or 0) > (before or 0) and procfs.machine_busy_seconds() > busy
    cores = procfs.core_busy_seconds()
    assert sorted(cores) == list(range(os.cpu_count() or 1))
    assert sum(cores.values()) == pytest.approx(procfs.machine_busy_seconds(), abs=0.5)  # the cores make the machine
    assert (procfs.rss_bytes(os.getpid()) or 0) > 1 << 20
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert s.getsockname()[1] in procfs.listening_ports(os.getpid())
    assert procfs.cpu_seconds(2**22 + 1) is None  # above pid_max: no such process


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_a_tree_is_dirty_unless_only_results_records_changed(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "loadtest" / "results").mkdir(parents=True)
    (tmp_path / "loadtest" / "results" / "bench.jsonl").write_text("{}\n")
    (tmp_path / "node.py").write_text("x = 1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "loadtest" / "results" / "bench.jsonl").write_text("{}\n{}\n")  # a record appended
    assert git_state(tmp_path)["dirty"] is False and len(git_state(tmp_path)["commit"]) == 40
    (tmp_path / "node.py").write_text("x = 2\n")
    (tmp_path / "loadtest" / "new.py").write_text("")  # untracked counts too
    state = git_state(tmp_path)
    assert (state["dirty"], state["changed_files"], state["changed_outside_loadtest"]) == (True, 2, ["node.py"])
    assert git_state(None)["commit"] is None


def test_frames_are_what_the_protocol_says() -> None:
    hello = '{"type":"hello","v":2,"token":"t","client":"x","cursor":"c1.AQI.x"}'
    assert wire.hello("t", "c1.AQI.x", client="x") == hello
    assert wire.hello("t") == wire.hello("t", "") == '{"type":"hello","v":2,"token":"t"}'  # the stored cursor
    assert wire.send("c", "d", 'a "b"') == '{"type":"send","cid":"c","conv":"d","body":"a \\"b\\""}'
    assert (wire.ack("c1.AQI.x"), wire.ping()) == ('{"type":"ack","cursor":"c1.AQI.x"}', '{"type":"ping"}')


def test_presence_churn_counts_flaps_and_announcements() -> None:
    churn: Churn[str] = Churn(random.Random(1), [], [])
    for at, up in ((1000, False), (2000, True), (5000, False)):  # back within the 3 s timeout, then gone
        churn.mark("u", up, at)
    announced = [(4100.0, "u", False, 1000), (8100.0, "u", False, 5000), (9000.0, "x", False, 1)]
    s = presence_stats(churn, announced, 0, 10_000, (0, 10_000), 3000)
    assert (s["flapped"], s["reconnects_within_timeout"], s["offline_longer_than_timeout_plus_1s"],
            s["of_which_announced_offline"], s["offline_announcements_unmatched"]) == (1, 1, 1, 1, 1)
    assert s["offline_delay_after_disconnect"]["p50_ms"] == 3100.0 and s["announced_offline_per_s"] == 0.3
