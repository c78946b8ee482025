"""The operator's commands find a cluster on non-default ports through <run dir>/run.json, and say in one line
when there is none."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley.tools import runfile
from parley.tools.up import run_info

from tests.integration.cluster import Cluster, free_port
from tests.poll import eventually_sync

pytestmark = pytest.mark.integration


def parley(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return subprocess.run([sys.executable, "-m", "parley", *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scratch cluster (free, non-default ports) and a run dir whose run.json names it, as `parley up` writes."""
    c = Cluster(tmp_path_factory.mktemp("cli-cluster"))
    try:
        c.start()
        runfile.write(c.root, run_info(c))  # its writer: this process, alive
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def run_dir(cluster: Cluster) -> Path:
    return cluster.root


def same_timings(cluster: Cluster) -> dict[str, str]:
    """The scratch cluster's settings but none that says where it is (the bucket limits must match) nor who
    connects (the command finds the ``ops`` user's credentials through run.json)."""
    return {k: v for k, v in cluster.settings.as_env().items()
            if not k.endswith(("_URL", "_PORT", "_HOST")) and k not in ("PARLEY_RUN_DIR", "PARLEY_NATS_USER",
                                                                        "PARLEY_NATS_PASSWORD")}


def test_status_finds_the_cluster_on_its_ports(run_dir: Path) -> None:
    out = parley("status", "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "region local" and lines[1].startswith("  node1  ") and lines[2].startswith("  node2  ")
    assert lines[-2].startswith("archiver  lag ") and lines[-1].startswith("presence  online ")
    by_env = parley("status", PARLEY_RUN_DIR=str(run_dir))
    assert by_env.returncode == 0 and by_env.stdout.splitlines()[0] == "region local"


def test_bus_status_finds_nats(run_dir: Path) -> None:
    out = parley("bus", "status", "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "MSG_0: R1" in out.stdout


def test_node_drain_finds_nats(cluster: Cluster, run_dir: Path) -> None:
    out = parley("node", "drain", "node2", "--run-dir", str(run_dir), **same_timings(cluster))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].startswith("node2 is draining") and "drained" in out.stdout.splitlines()[-1]


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("command", [("status",), ("node", "drain", "node1"), ("bus", "status")])
def test_no_cluster_is_one_line_and_exit_1(command: tuple[str, ...], tmp_path: Path) -> None:
    if answers(8070) or answers(4222):
        pytest.skip("something answers on Parley's default ports on this machine")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = runfile.RunInfo(up_pid=int(gone.stdout), started=0.0, urls={"discovery": "http://127.0.0.1:1"})
    runfile.write(tmp_path, stale)  # a kill -9'd parley up's file: no cluster either
    for run_dir in (tmp_path / "absent", tmp_path):
        out = parley(*command, "--run-dir", str(run_dir))
        said = (out.stdout + out.stderr).strip()
        assert out.returncode == 1 and "\n" not in said and "Traceback" not in said, said
        assert said.startswith(f"no cluster found in {run_dir} (start one with `make run`), or pass --run-dir DIR")


def test_parley_up_on_other_ports_then_status_finds_it(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("nats", "api", "discovery", "archiver", "presence", "node")}
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "parley", "up", "--run-dir", str(run_dir), "--nodes", "1"]
    for name, port in ports.items():
        cmd += [f"--{name}-port", str(port)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=clean, stdout=out, stderr=subprocess.STDOUT)
    try:
        eventually_sync(lambda: runfile.read(run_dir) is not None or proc.poll() is not None,
                        what="parley up wrote run.json", timeout=90)
        assert proc.poll() is None, log.read_text()
        info = runfile.read(run_dir)
        assert info is not None and info.up_pid == proc.pid
        assert info.urls["api"] == f"http://127.0.0.1:{ports['api']}"
        assert {p.name: p.port for p in info.processes}["node1"] == ports["node"]
        out = parley("status", "--run-dir", str(run_dir))
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"ws://127.0.0.1:{ports['node']}/ws" in out.stdout and "archiver  lag" in out.stdout
        # and Prometheus's targets (ops/prometheus.yml reads these files) name the same ports
        node_targets = json.loads((run_dir / "prometheus" / "parley-node.json").read_text())
        assert node_targets == [{"targets": [f"127.0.0.1:{ports['node']}"], "labels": {}}]
        # the bus is authenticated: run.json names the ops user's credentials, which `parley bus` uses
        assert info.nats_credentials == str((run_dir / "nats-auth" / "ops.json").resolve())
        bus = parley("bus", "status", "--run-dir", str(run_dir))
        assert bus.returncode == 0 and "MSG_0: R1" in bus.stdout, bus.stdout + bus.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert runfile.read(run_dir) is None and not (run_dir / "run.json").exists()  # a clean stop removes it
