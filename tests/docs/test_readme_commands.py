"""README's commands run as written on a fresh clone: the tools are in .venv/bin, not on PATH, so every
command line in a code block or code span that runs one of them says `.venv/bin/…` (or goes through make),
and the quick start says `make install` and how to put .venv/bin on PATH."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
TOOLS = ("python", "python3", "pip", "locust", "cqlsh")  # installed into .venv/bin by make install
# a command: the start of a code block line, or a code span, optionally after VAR=value assignments
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(\S+)")


def code_blocks() -> list[str]:
    return [line for block in re.findall(r"```sh\n(.*?)```", README, re.S) for line in block.splitlines()]


def code_spans() -> list[str]:
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    return [m.strip() for m in re.findall(r"`([^`\n]+)`", prose) if " " in m.strip()]  # a name alone is no command


def test_no_command_needs_the_venv_on_path():
    bare = [c for c in code_blocks() + code_spans()
            if (m := COMMAND.match(c.strip())) and m.group(1) in TOOLS]
    assert bare == []
    starts = [COMMAND.match(line.strip()).group(1) for line in code_blocks() if COMMAND.match(line.strip())]
    assert "parley" not in starts  # in code blocks (copied and pasted) always .venv/bin/parley


def test_the_quick_start_says_make_install_and_how_to_put_the_venv_on_path():
    quick = README[README.index("## Quick start"):README.index("### History in Cassandra")]
    assert "make install" in quick and 'export PATH="$PWD/.venv/bin:$PATH"' in quick
    assert 'make run ARGS="' in quick


def test_make_run_passes_args_to_parley_up():
    for target, want in (("run", "parley up --nodes 3"), ("run-cassandra", "parley up --store cassandra --nodes 3")):
        out = subprocess.run(["make", "--no-print-directory", "-n", target, "ARGS=--nodes 3"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == f".venv/bin/{want}", out.stdout
