"""``step_aside`` (ADR 0060): the calling thread, and the threads it starts afterwards, at ``SCHED_BATCH`` and
the given nice value; a thread started before keeps its priority (the archiver's store thread); 0 leaves a
process as it is; a process already nicer is not raised. Each case runs in a process of its own (a thread's
priority cannot be raised back without privilege)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")

PROBE = """
import json, os, sys, threading
from parley.priority import step_aside
os.nice(int(sys.argv[2]))
seen, stepped = {}, threading.Event()
def mine(name):
    seen[name] = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
def before():
    stepped.wait()
    mine("before")
b = threading.Thread(target=before)
b.start()
step_aside(int(sys.argv[1]))
stepped.set(); b.join()
t = threading.Thread(target=mine, args=("thread",))
t.start(); t.join()
mine("main")
print(json.dumps(seen))
"""


def probe(nice: int, already: int = 0) -> dict[str, list[int]]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(nice), str(already)], capture_output=True, text=True,
                         check=True, timeout=30)
    return json.loads(out.stdout)


BASE = os.getpriority(os.PRIO_PROCESS, 0)  # the test runner's own nice value, inherited by each probe


def test_the_thread_and_those_it_starts_run_as_batch_work_at_the_nice_value():
    nice = max(BASE, 10)
    seen = probe(10)
    assert seen["main"] == seen["thread"] == [os.SCHED_BATCH, nice]
    assert seen["before"] == [os.SCHED_OTHER, BASE]  # started before: as it was


def test_zero_leaves_the_process_as_it_is():
    assert probe(0) == {"main": [os.SCHED_OTHER, BASE], "thread": [os.SCHED_OTHER, BASE],
                        "before": [os.SCHED_OTHER, BASE]}


def test_a_process_started_nicer_stays_as_nice_and_the_value_is_capped():
    assert probe(5, already=15 - BASE)["main"] == [os.SCHED_BATCH, max(BASE, 15)]
    assert probe(40)["main"] == [os.SCHED_BATCH, 19]
