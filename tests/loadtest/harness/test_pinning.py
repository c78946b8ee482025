"""CPU pinning (loadtest/harness/pinning.py): every thread of a server process moves to the server core."""

from __future__ import annotations

import os
import subprocess
import sys

from parley.loadtest.harness import pinning

THREADS = "import threading, time; [threading.Thread(target=time.sleep, args=(30,)).start() for _ in range(3)]; " \
          "print('up', flush=True); time.sleep(30)"


def test_every_thread_of_a_process_is_pinned() -> None:
    proc = subprocess.Popen([sys.executable, "-c", THREADS], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        pinned = pinning.pin_servers({"server": proc.pid})
        if not pinning.can_pin():
            assert pinned == {}
            return
        tids = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
        assert pinned == {"server": len(tids)} and len(tids) >= 4
        assert {frozenset(os.sched_getaffinity(t)) for t in tids} == {frozenset({pinning.SERVER_CORE})}
    finally:
        proc.kill()
        proc.communicate()


def test_a_process_that_is_gone_pins_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert pinning.pin(proc.pid, pinning.SERVER_CORE) == 0
