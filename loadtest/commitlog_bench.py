"""What a durable commit log costs the store: Cassandra's sync modes side by side in one run.

    .venv/bin/python -m parley.loadtest.commitlog_bench [--modes periodic,group] [--messages N] [...]

For each mode (``cassandra_runner.COMMITLOG_SYNC``), in the order given, the store benchmark's Cassandra
run (``store_bench.run_cassandra``: its own instance started with that ``commitlog_sync``, the same seeded
workload, the archiver draining N messages, then ``put_messages`` at 1 and 4 batches in flight, then the
reads). Prints each mode's figures and its ratio to the first mode's, and appends one JSON line to
``loadtest/results/commitlog.jsonl``. ``periodic`` acks before the fsync (a kill -9 loses up to 10 s of
acked writes); ``group`` and ``batch`` ack after it (docs/adr/0011). The store benchmark's options apply
(``--messages``, ``--reads``, ``--conversations``, ``--heap``, ...). A quick comparison:
``--messages 20000 --reads 20 --conversations 200``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from parley.loadtest import store_bench
from parley.loadtest.figures import dig
from parley.loadtest.harness import record
from parley.loadtest.harness.latency import ratio
from parley.loadtest.harness.session import BenchError, fmt, say, stop_on_signals
from parley.loadtest.store_workload import build_plan
from parley.tools import cassandra_runner

from parley.errors import ParleyError
from parley.settings import Settings

FIGURES = [m for m in store_bench.METRICS if m[0].startswith(("archiver", "put", "cassandra", "sync", "newest"))]


def split_modes(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--modes a,b`` out of argv (the rest goes to the store benchmark's parser)."""
    modes, rest, it = ["periodic", "group"], [], iter(argv)
    for arg in it:
        if arg == "--modes":
            modes = next(it, "").split(",")
        else:
            rest.append(arg)
    bad = [m for m in modes if m not in cassandra_runner.COMMITLOG_SYNC]
    if bad or not modes:
        raise SystemExit(f"--modes: one or more of {','.join(cassandra_runner.COMMITLOG_SYNC)}")
    return modes, rest


def report(results: dict[str, Any], modes: list[str]) -> str:
    base = modes[0]
    head = f"{'':34}" + "".join(f"{m:>12}" for m in modes) + "".join(f"{m + '/' + base:>16}" for m in modes[1:])
    lines = ["", head]
    for _, label, path in FIGURES:
        values = [dig(results.get(m), *path) for m in modes]
        ratios = [ratio(v, values[0]) for v in values[1:]]
        lines.append(f"{label:34}" + "".join(f"{store_bench.cell(v):>12}" for v in values)
                     + "".join(f"{store_bench.cell(r):>16}" for r in ratios))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    modes, rest = split_modes(sys.argv[1:] if argv is None else argv)
    if "--out" not in rest:
        rest += ["--out", str(record.results_file("commitlog.jsonl") or "")]
    args, recorder = store_bench.parse_args([*rest, "--only", "cassandra"])
    stop_on_signals()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="parley-commitlog-bench-"))
    plan = build_plan(args, Settings().shards)
    rec = store_bench.new_record(recorder, args, plan, work)
    rec["modes"] = modes
    try:
        for mode in modes:
            say(f"cassandra, commitlog_sync {mode}:")
            args.commitlog_sync = mode
            (work / mode).mkdir()
            try:
                rec["results"][mode] = store_bench.run_cassandra(args, plan, work / mode, rec)
                rec["results"][mode]["cassandra"] = rec["cassandra"]  # each mode's instance (rec's: the last)
            except (BenchError, ParleyError, OSError, TimeoutError) as err:
                rec["errors"][mode] = f"{type(err).__name__}: {getattr(err, 'message', err)}"
                say(f"  {mode} failed: {rec['errors'][mode]}", err=True)
    finally:
        if rec["errors"] or args.keep_work_dir:
            say(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    rec["duration_s"] = round(time.monotonic() - started, 1)
    say(report(rec["results"], modes))
    if rec["errors"]:
        return 1
    rec.pop("errors")
    say(f"\n{recorder.append(rec)}; took {rec['duration_s']}s ({fmt(args.messages)} messages per mode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
