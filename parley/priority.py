"""A background process's place on a busy core: behind the processes a message waits for (docs/adr/0060).

The archiver copies the streams into the store in batches (ADR 0038: what is pending every
``archiver_linger_s``); nothing a device waits for waits for it (a DM is SENT once JetStream stored it, and
reaches its receiver from the stream's republish). On a core it shares with a node and nats-server it took an
equal share of the core for each tick's batch (~10 ms of CPU at 5,000 DMs/s), slowing the node's and
nats-server's work on the DMs in flight meanwhile. ``step_aside`` makes the calling thread ``SCHED_BATCH``
(CPU-bound work to the kernel) with the given nice value (a smaller share when the core is contended; all of it
when the core is otherwise idle). Threads started afterwards inherit both; threads
started before keep theirs — the archiver calls it once its store's thread is running, so that the thread
holding a lock the node also takes (SQLite's write lock, when both use one file) is never held back by its low
priority while the node waits for it (priority inversion). Lowering one's own priority needs no privilege;
where the platform has neither call it does nothing.
"""

from __future__ import annotations

import contextlib
import os

MAX_NICE = 19


def step_aside(nice: int) -> None:
    """This thread (and those it starts) at ``SCHED_BATCH`` and at least ``nice``; 0: left as it is."""
    if nice <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):  # not Linux
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), min(nice, MAX_NICE)))
