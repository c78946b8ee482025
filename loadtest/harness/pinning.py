"""CPU pinning for side-by-side runs: the servers on one core, the load generator on another.

``os.sched_setaffinity`` on a pid moves only that thread, so every thread of a process
(``/proc/<pid>/task``) is pinned; threads started later inherit the mask of the thread that starts them.
On a machine with fewer than two cores nothing is pinned (and the record says so).
"""

from __future__ import annotations

import contextlib
import os

SERVER_CORE, GENERATOR_CORE = 0, 1


def can_pin() -> bool:
    return (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")


def pin(pid: int, core: int) -> int:
    """Every thread of ``pid`` to ``core``; how many threads were pinned (0: the process is gone)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return 0
    done = 0
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, {core})
            done += 1
    return done


def pin_servers(pids: dict[str, int]) -> dict[str, int]:
    """Each server process to the server core: threads pinned per process name."""
    return {name: pin(pid, SERVER_CORE) for name, pid in pids.items()} if can_pin() else {}


def pin_generator() -> bool:
    """This process to the generator core (call after the servers are started: children inherit it)."""
    if not can_pin():
        return False
    pin(os.getpid(), GENERATOR_CORE)
    return True
