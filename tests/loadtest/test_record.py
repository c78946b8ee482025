"""Where a run's line goes: the run dir unless asked to record (``--record``) into the tracked loadtest/results/;
the make targets that mean to record say so."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
from parley.loadtest.harness import record

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> record.Recorder:
    p = argparse.ArgumentParser()
    record.add_options(p, "thing.jsonl")
    return record.recorder(p, p.parse_args(list(argv)))


@pytest.fixture
def dirty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "git_state", lambda root: {"commit": "abc", "dirty": True, "changed_files": 1,
                                                           "changed_outside_loadtest": ["node/app.py"]})
    monkeypatch.setattr(record, "uncommitted", lambda root: ["node/app.py"])


def test_a_run_writes_to_the_run_dir_by_default_even_from_a_dirty_tree(dirty, monkeypatch, tmp_path):
    monkeypatch.setenv("PARLEY_RUN_DIR", str(tmp_path))
    rec = parse()
    assert rec.out == tmp_path / "results" / "thing.jsonl" and rec.refusal is None
    assert rec.append({"x": 1}).startswith("appended to") and (tmp_path / "results" / "thing.jsonl").exists()
    monkeypatch.delenv("PARLEY_RUN_DIR")
    assert parse().out == (record.checkout() or Path.cwd()) / ".parley" / "results" / "thing.jsonl"


def test_record_appends_to_the_tracked_file_under_the_rules(dirty, capsys):
    assert parse("--record", "--allow-dirty").out == ROOT / "loadtest" / "results" / "thing.jsonl"
    with pytest.raises(SystemExit):
        parse("--record")  # a dirty tree records only with --allow-dirty
    assert "uncommitted changes (node/app.py)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--out", "/tmp/elsewhere.jsonl")  # an explicit file is a kept record too
    assert parse("--no-save").out is None


def test_record_and_its_bookkeeping_are_not_among_the_runs_options():
    p = argparse.ArgumentParser()
    record.add_options(p, "thing.jsonl")
    args = p.parse_args(["--no-save"])
    assert record.Recorder(None, False).new_record(args)["args"] == {"out": ""}


def test_the_make_targets_that_record_pass_record_and_their_scripts_take_it():
    makefile = (ROOT / "Makefile").read_text()
    modules = re.findall(r"^\t\$\(BIN\)/python -m parley\.loadtest\.(\w+)(.*)$", makefile, re.M)
    recording = {m for m, rest in modules if m not in ("run", "model", "docs")}
    assert {"standard", "bench", "efficiency", "leader_kill", "store_bench", "scale", "presence_cost", "push_cost",
            "workers_bench", "regions", "live_bench"} == recording
    assert all("--record" in rest for m, rest in modules if m in recording)
    assert all("--record" not in rest for m, rest in modules if m not in recording)  # the smoke: the run dir
    for module in sorted(recording):
        out = subprocess.run([sys.executable, "-m", f"parley.loadtest.{module}", "--help"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and "--record" in out.stdout, module + out.stderr
