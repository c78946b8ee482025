"""The archiver steps aside on a shared core (ADR 0060): in the session's cluster (a real nats-server, node,
archiver), every thread of the archiver process runs at ``SCHED_BATCH`` and the default nice value, while
the node's threads are as the test runner started them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from parley.settings import Settings
from tests.integration.cluster import Cluster

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")]


def threads(pid: int) -> list[tuple[int, int]]:
    """(policy, nice) of each thread of ``pid``, from ``/proc``: fields 19 (nice) and 41 (policy) of ``stat``."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 on
        out.append((int(fields[38]), int(fields[16])))
    return out


def test_the_archiver_runs_as_batch_work_behind_the_node(cluster: Cluster):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    pids = cluster.pids()
    archiver, node = threads(pids["archiver"]), threads(pids["node1"])
    assert len(archiver) > 1  # the store's thread too, started after the archiver stepped aside
    assert set(archiver) == {(os.SCHED_BATCH, max(base, Settings().archiver_nice))}
    assert set(node) == {(os.SCHED_OTHER, base)}
