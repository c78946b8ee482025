"""The Locust harness end to end: a 10-second headless smoke against a real cluster started here.

Locust runs as its own process (``python -m parley.loadtest.run`` starts it): gevent's monkey-patching never
enters the pytest process. Load stays on 127.0.0.1, 10 users, 10 seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley.loadtest.run import LOCUSTFILE
from parley.tools import runfile
from parley.tools.cluster import Cluster, free_port
from parley.tools.up import run_info

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("locust-cluster"))
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


def test_smoke_scenario_runs_with_no_failures_and_no_loss(cluster: Cluster, tmp_path: Path) -> None:
    results = tmp_path / "locust.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "parley.loadtest.run", "smoke", "--api", cluster.api_url, "--users", "10",
         "--run-time", "10", "--loss-timeout", "5", "--out", str(tmp_path / "run"), "--results", str(results),
         "--allow-dirty"],  # a record of the harness, not of Parley: the tree may have uncommitted changes
        capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    record = json.loads(results.read_text().splitlines()[-1])
    stats = {row["name"]: row for row in record["stats"]}
    assert record["verdict"] == {"failures": 0, "deliveries": record["verdict"]["deliveries"], "lost": 0, "ok": True}
    assert stats["Aggregated"]["failures"] == 0
    # every user logged in, connected and sent; DMs and the group message both reached recipients with a latency
    assert stats["/v1/login"]["count"] == 10 and stats["connect"]["count"] == 10
    assert {row["type"] for row in stats.values() if row["name"].startswith("/v1/")} <= {"GET", "POST"}
    assert not [name for name in stats if name.split(" ")[0] in ("GET", "POST", "PUT", "DELETE")]  # no "GET GET …"
    said = [x for x in (tmp_path / "run" / "locust.out").read_text().splitlines() if x.startswith("parley ledger")]
    assert said and said[0].startswith("parley ledger (1 worker): ") and said[0].endswith(": OK"), said
    ledger = record["summary"]["ledger"]
    # a DM whose recipient is between sessions when the run stops is owed to an offline user, not delivered
    # within the run (a loaded machine made it 81 deliveries for 82 sends): the ledger below says none is lost
    assert stats["send dm"]["count"] > 20
    assert stats["deliver dm"]["count"] >= stats["send dm"]["count"] - ledger["owed_to_offline"]
    assert stats["deliver dm"]["p50_ms"] is not None and stats["deliver dm"]["p99_ms"] is not None
    assert ledger["acked"] > 20 and ledger["expected_deliveries"] == ledger["delivered"] > 0
    assert ledger["owed_to_online"] == 0
    assert (tmp_path / "run" / "report.html").stat().st_size > 10_000
    assert not cluster.errors_in_logs()


def test_a_distributed_run_ends_with_the_aggregated_ledger_on_the_master(cluster: Cluster, tmp_path: Path) -> None:
    """A master and two workers: each worker settles its cells' ledger when the master asks, the master adds
    them up, prints the verdict and exits 0 only when nothing was lost."""
    roster = tmp_path / "roster.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    seeded = subprocess.run([sys.executable, "-m", "parley.loadtest.seed", "--api", cluster.api_url, "--users", "8",
                             "--cell", "4", "--group-size", "4", "--out", str(roster)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    assert "the users are lt-" in seeded.stdout  # the documented prefix: nothing deletes them
    run_dir = tmp_path / "run"  # no --host: the master finds the API in run.json, as parley up writes it
    run_dir.mkdir()
    runfile.write(run_dir, run_info(cluster))
    port = free_port()
    common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--roster", str(roster), "--scenario", "smoke",
              "--parley-workers", "2", "--loss-timeout", "5"]
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    workers = [subprocess.Popen([*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    try:
        master = subprocess.run([*common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                                 str(port), "--expect-workers", "2", "--headless", "--only-summary", "-u", "8", "-r",
                                 "8", "-t", "8s", "--run-dir", str(run_dir), "--summary-out",
                                 str(tmp_path / "summary.json")], env=env, capture_output=True, text=True,
                                timeout=150)
        for w in workers:
            w.wait(timeout=60)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        for log in logs:
            log.close()
    said = [line for line in master.stdout.splitlines() if line.startswith("parley ledger")]
    assert master.returncode == 0 and said and said[0].startswith("parley ledger (2 workers): ") and \
        said[0].endswith(": OK"), master.stdout[-3000:] + master.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    ledger = summary["ledger"]
    assert summary["workers"] == summary["workers_reported"] == 2 and summary["clients"] == 8
    assert ledger["lost"] == 0 and ledger["acked"] > 0 and ledger["delivered"] > 0
    # the workers' loss ledgers arrived with their statistics: the master's table has every client's connect
    assert {row["name"]: row for row in summary["stats"]}["connect"]["count"] == 8


def test_without_a_cluster_the_run_and_the_seeding_say_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    run = subprocess.run([sys.executable, "-m", "parley.loadtest.run", "smoke", "--run-dir", str(tmp_path),
                          "--no-save"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.strip() == (
        f"no cluster found in {tmp_path} (start one with `make run`), or pass --run-dir DIR or --api URL")
    seeded = subprocess.run([sys.executable, "-m", "parley.loadtest.seed", "--api", "http://127.0.0.1:1", "--users",
                             "2", "--out", str(tmp_path / "r.json")], env=env, capture_output=True, text=True,
                            timeout=60)
    assert seeded.returncode == 1 and seeded.stderr.strip() == "api at http://127.0.0.1:1 is not answering"
    locust = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-t", "1s",
                             "--run-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert locust.returncode == 1 and locust.stderr.strip().splitlines()[-1] == (
        f"no cluster found in {tmp_path} (start one with `make run`), or pass --run-dir DIR or --host URL")
