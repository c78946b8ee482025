"""A benchmark process's frame: its error, its printing, signals, the event loop and a scratch cluster.

Invariants: a cluster a benchmark starts is stopped before the process exits, however the run ends
(an error, Ctrl-C, SIGTERM or SIGHUP; its processes are also tied to this one, so even a SIGKILL
takes them down); a failed run keeps its run dir for the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from parley.loadtest.harness import procfs
from parley.loadtest.harness.logs import scan_logs
from parley.tools.client import ApiError
from parley.tools.cluster import DEFAULT_PORTS, Cluster

from parley.errors import ParleyError

T = TypeVar("T")
# what ends a run early but cleanly: the cluster, the API or a socket failed, or we were stopped
RUN_ERRORS = (ParleyError, ApiError, aiohttp.ClientError, ConnectionError, TimeoutError, OSError)


class BenchError(ParleyError):
    """Something that makes the run meaningless (the cluster would not start, setup failed, ...)."""

    default_code = "bench_failed"


def say(*parts: object, err: bool = False) -> None:
    """Print, but never let a closed stdout (``| head``) stop the cleanup."""
    with contextlib.suppress(OSError, ValueError):
        print(*parts, file=sys.stderr if err else sys.stdout, flush=True)


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) >= 100 else f"{v:.2f}{unit}"
    return f"{v:,}{unit}" if isinstance(v, int) else f"{v}{unit}"


def within(lo: float, hi: float, cast: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """An argparse ``type``: a number from ``lo`` to ``hi``, both included (bounded runs only)."""
    def parse(text: str) -> Any:
        value = cast(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text}: from {lo:g} to {hi:g}")
        return value

    return parse


def numbers(lo: float, hi: float) -> Callable[[str], list[float]]:
    """An argparse ``type``: comma-separated numbers, each from ``lo`` to ``hi`` ('' for none)."""
    one = within(lo, hi)

    def parse(text: str) -> list[float]:
        try:
            return [one(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: comma-separated numbers") from None

    return parse


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C does: through every ``finally`` (the cluster stops)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop, like the cluster's processes, when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def guarded(name: str, work: Callable[[], T]) -> T | None:
    """``work()``, or None after printing why the run ended early."""
    try:
        return work()
    except BenchError as err:
        say(f"{name}: {err.message}", err=True)
    except RUN_ERRORS as err:
        say(f"{name}: {type(err).__name__}: {getattr(err, 'message', err)}", err=True)
    except KeyboardInterrupt:
        say(f"{name}: interrupted", err=True)
    return None


async def bounded(calls: Iterable[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    """Each call made, at most ``concurrency`` at a time; results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


def require_running(cluster: Cluster) -> None:
    """Fail the run when a process of the cluster died (benchmarks call it between and during steps)."""
    dead = cluster.exited()
    if dead:
        raise BenchError(f"{', '.join(c.name for c in dead)} exited during the run; logs in {cluster.logs}")


def unexpected_listeners(cluster: Cluster) -> list[str]:
    """Ports a cluster process listens on that the launcher did not choose (must never be a default one)."""
    ours = {cluster.nats_port, *cluster.node_ports,
            *(getattr(cluster.settings, f"{role}_port") for role in ("api", "discovery", "archiver", "presence",
                                                                     "pusher"))}
    out = []
    for name, pid in cluster.pids().items():
        for port in sorted(procfs.listening_ports(pid) - ours):
            where = f"{name} (pid {pid}) listens on port {port}, one the launcher did not choose"
            if port in DEFAULT_PORTS:
                raise BenchError(where + " (a default port another cluster may use): stopping")
            say(f"  warning: {where}")
            out.append(where)
    return out


@contextlib.contextmanager
def scratch_cluster(record: dict[str, Any], prefix: str, keep: bool, nodes: int = 2,
                    **overrides: object) -> Iterator[Cluster]:
    """A started scratch cluster in a temp dir, its processes tied to this one. On the way out it is
    stopped first, then the record gets ``log_issues`` (warnings and errors in its logs) and the
    run dir is removed, unless ``keep`` or the run failed."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = Cluster(root, nodes, tie_to_parent=True, **overrides)
    ok = False
    try:
        say(f"starting a cluster in {root}")
        cluster.start()
        say(f"  up: {', '.join(f'{name}={pid}' for name, pid in cluster.pids().items())}")
        yield cluster
        ok = True
    finally:
        cluster.shutdown()  # first: nothing below may leave the cluster running
        say("cluster stopped")
        record["log_issues"] = scan_logs(cluster.logs)
        if keep or not ok:
            say(f"run dir kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
