"""The README's push demo end to end: the FCM stand-in, a cluster with push on whose run.json the demo reads,
and `python -m parley.tools.push_demo` making alice's DM reach bob's phone as a push through firebase-admin."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley.tools import runfile
from parley.tools.fcm_stub import FcmStub, service_account_file
from parley.tools.up import run_info

from tests.integration.cluster import Cluster, free_port
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def push_cluster(tmp_path_factory: pytest.TempPathFactory, fcm: FcmStub) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("push-demo")
    key = service_account_file(root, fcm.token_uri)
    c = Cluster(root, nodes=1, fcm_credentials=str(key), fcm_endpoint=fcm.url, push_grace_s=1.0,
                pusher_port=free_port())
    try:
        c.start()
        c.start_pusher()
        yield c
    finally:
        c.shutdown()


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return subprocess.run([sys.executable, "-m", "parley.tools.push_demo", *args], env=env, capture_output=True,
                          text=True, timeout=120)


async def test_the_demo_finds_the_cluster_and_bob_gets_a_push(push_cluster: Cluster, fcm: FcmStub) -> None:
    runfile.write(push_cluster.root, run_info(push_cluster))
    out = demo("--run-dir", str(push_cluster.root))
    assert out.returncode == 0, out.stdout + out.stderr
    token = next(w for w in out.stdout.split() if w.startswith("demo-token-")).rstrip("…")

    def pushed() -> list[dict]:
        return [s for s in fcm.delivered() if s["message"].get("token", "").startswith(token)]

    got = await eventually(pushed, timeout=30, what="bob's push")
    assert got[0]["message"]["notification"]["body"] == "hi bob"


def test_without_a_pusher_or_a_cluster_the_demo_says_so(tmp_path: Path, push_cluster: Cluster) -> None:
    info = run_info(push_cluster)
    runfile.write(tmp_path, runfile.RunInfo(info.up_pid, info.started, info.urls,
                                            [p for p in info.processes if p.role != "pusher"]))
    out = demo("--run-dir", str(tmp_path))
    assert out.returncode == 1 and "runs no pusher" in out.stderr and "Traceback" not in out.stderr
    out = demo("--api", "http://127.0.0.1:1")
    assert out.returncode == 1 and out.stderr.strip() == "api at http://127.0.0.1:1 is not answering"
