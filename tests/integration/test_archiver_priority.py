"""The archiver steps aside on a shared core when told to (``PARLEY_ARCHIVER_NICE``, ADR 0060): in a cluster of its
own (a real nats-server, node, archiver, SQLite store) with the setting at 10, the archiver's main thread and the
threads it started afterwards run at ``SCHED_BATCH`` and nice 10, its store's thread (started before) as the test
runner started it, so the SQLite write lock it shares with the node is never held at a low priority; the node's
threads are all as started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")]


NICE = 10


@pytest.fixture(scope="module")
def stepped_aside_cluster(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cluster:
    c = Cluster(tmp_path_factory.mktemp("nice-cluster"), nodes=1, archiver_nice=NICE)
    request.addfinalizer(c.shutdown)  # also when the start fails half-way
    c.start()
    return c


def threads(pid: int) -> dict[int, tuple[int, int]]:
    """Thread id → (policy, nice), from ``/proc``: fields 19 (nice) and 41 (policy) of its ``stat``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 on
        out[int(task.name)] = (int(fields[38]), int(fields[16]))
    return out


def test_the_archiver_runs_as_batch_work_behind_the_node_but_not_its_store_thread(stepped_aside_cluster: Cluster):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    pids = stepped_aside_cluster.pids()
    archiver, node = threads(pids["archiver"]), threads(pids["node1"])
    stepped_aside = (os.SCHED_BATCH, max(base, NICE))
    assert archiver.pop(pids["archiver"]) == stepped_aside  # the main thread: the batches' Python and NATS work
    # the store's thread, started by the migration before the archiver stepped aside, as started; any other was
    # started afterwards and stepped aside with it
    assert sorted(archiver.values()) == sorted([(os.SCHED_OTHER, base)] + [stepped_aside] * (len(archiver) - 1))
    assert set(node.values()) == {(os.SCHED_OTHER, base)}
