"""A benchmark's record: what ran where (machine, versions, the git commit and whether the tree was
clean) and the one JSON line appended to a results file.

Where the line goes: by default ``<run dir>/results/<name>`` (``PARLEY_RUN_DIR``, else ``.parley`` in the
checkout or the current directory): untracked, so a run leaves the tree clean; ``--record`` appends to the
tracked ``loadtest/results/<name>`` (what the docs' tables are made from; the ``make bench*`` targets pass
it), ``--out FILE`` to another file, ``--no-save`` nowhere.

Rules for a record into ``loadtest/results/`` or ``--out``, checked before a run starts so no minutes are
spent on a run that cannot be kept:
- every record names its commit, so a run outside a git checkout (an installed package) records
  nothing unless pointed at a checkout's file, and even then needs its commit;
- a tree with uncommitted changes records only with ``--allow-dirty`` (the record then says
  ``dirty``); appended results records (``loadtest/results/*.jsonl``) do not count as changes.
Results files are only ever appended to; old lines stay as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from parley.loadtest.harness import procfs
from parley.tools import natsserver

RESULTS_DIR = Path("loadtest") / "results"
PACKAGES = ("nats-py", "aiohttp", "uvloop", "orjson")
HOUSEKEEPING = {"no_save", "allow_dirty", "keep_run_dir", "keep_work_dir", "record", "results_name"}  # no figure


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def checkout() -> Path | None:
    """The git work tree this code runs from; None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    top = _git(root, "rev-parse", "--show-toplevel").strip()
    return root if top and Path(top).resolve() == root else None


def results_file(name: str) -> Path | None:
    """The tracked results file (``--record``); None outside a checkout."""
    root = checkout()
    return root / RESULTS_DIR / name if root else None


def scratch_file(name: str) -> Path:
    """Where a run's line goes unless it records: the run dir's ``results/``, not tracked by git."""
    run_dir = os.environ.get("PARLEY_RUN_DIR")
    return (Path(run_dir) if run_dir else (checkout() or Path.cwd()) / ".parley") / "results" / name


def changed_paths(root: Path) -> list[str]:
    """Paths with uncommitted changes, untracked ones included (``git status``, ignored files not)."""
    entries = iter(_git(root, "status", "--porcelain", "-z").split("\0"))
    out = []
    for entry in entries:
        if entry:
            out.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy: its source path follows
                next(entries, None)
    return out


def uncommitted(root: Path) -> list[str]:
    """Changes that could change a figure: all but appended results records."""
    return [p for p in changed_paths(root) if not p.startswith(f"{RESULTS_DIR}/")]


def git_state(root: Path | None) -> dict[str, Any]:
    if root is None:
        return {"commit": None, "dirty": None, "changed_files": None, "changed_outside_loadtest": []}
    changed = uncommitted(root)
    return {"commit": _git(root, "rev-parse", "HEAD").strip() or None, "dirty": bool(changed),
            "changed_files": len(changed), "changed_outside_loadtest": [p for p in changed
                                                                        if not p.startswith("loadtest/")][:50]}


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": procfs.cpu_model() or platform.processor(),
        "memory_gb": round(procfs.memory_bytes() / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(**extra: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pkg in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    with contextlib.suppress(Exception):
        out["nats-server"] = subprocess.run([natsserver.binary(), "--version"], capture_output=True, text=True,
                                            timeout=10).stdout.strip()
    return out | extra


class Recorder:
    """Where a run's record goes (``out``; None: nowhere), and the state of the tree it ran from."""

    def __init__(self, out: Path | None, allow_dirty: bool, kept: bool = True) -> None:
        """``kept``: a record that is kept (``--record``, ``--out``): the rules apply; a scratch line in the run
        dir is written whatever the tree's state (it says that state)."""
        self.out = out
        self.git = git_state(checkout())
        self.refusal = self._refusal(allow_dirty) if out is not None and kept else None

    def _refusal(self, allow_dirty: bool) -> str | None:
        if self.git["commit"] is None:
            return "not running from a git checkout: a record must name its commit (--no-save to run anyway)"
        root = checkout()
        if self.git["dirty"] and root and not allow_dirty:
            changed = uncommitted(root)
            files = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            return (f"the work tree has uncommitted changes ({files}): commit them, or pass --allow-dirty "
                    "(the record says dirty), or --no-save")
        return None

    def new_record(self, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
        return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine_info(),
                "git": self.git, "versions": versions(**extra),
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                         if k not in HOUSEKEEPING}}

    def append(self, record: dict[str, Any]) -> str:
        """Append ``record`` as one line; what to tell the user."""
        if self.out is None:
            return "not recorded (--no-save, or not a source checkout)"
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with open(self.out, "a") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
        root = checkout()
        out = self.out.resolve()
        return f"appended to {out.relative_to(root) if root and out.is_relative_to(root) else out}"


def add_options(parser: argparse.ArgumentParser, name: str, flag: str = "--out") -> None:
    tracked = results_file(name)
    parser.add_argument(flag, default="", help="append the run's line to this file instead (the --record rules "
                                              "apply)")
    parser.add_argument("--record", action="store_true",
                        help=f"append the run to {tracked or RESULTS_DIR / name} (tracked; refused from a dirty "
                             f"tree without --allow-dirty). Default: {scratch_file(name)} (the run dir, untracked)")
    parser.add_argument("--no-save", action="store_true", help="print the figures only; append nothing")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="record from a work tree with uncommitted changes (the record says dirty)")
    parser.set_defaults(results_name=name)


def recorder(parser: argparse.ArgumentParser, args: argparse.Namespace, flag: str = "--out") -> Recorder:
    """The run's ``Recorder``; a run that could not be recorded is refused now, as a usage error."""
    out, name = getattr(args, flag.lstrip("-").replace("-", "_")), args.results_name
    if args.no_save:
        rec = Recorder(None, args.allow_dirty)
    elif out or args.record:
        target = Path(out) if out else results_file(name)
        if target is None:
            parser.error("--record: not running from a git checkout: a record must name its commit "
                         "(--out FILE elsewhere, or leave --record out to write to the run dir)")
        rec = Recorder(target, args.allow_dirty)
    else:
        rec = Recorder(scratch_file(name), args.allow_dirty, kept=False)
    if rec.refusal:
        parser.error(rec.refusal)
    return rec
