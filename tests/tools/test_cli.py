"""Every ``parley`` command and subcommand answers ``--help`` (exit 0) with each of its options."""

from __future__ import annotations

import argparse

import pytest
from parley.tools import cassandra_runner
from parley.tools.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[str]]]:
    """(the words after ``parley``, the options that command shows) for every command in the tree."""
    options = [o for a in parser._actions for o in a.option_strings]
    out = [(path, options)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out += commands(child, (*path, name))
    return out


TREE = commands(build_parser())
TREE_BY_PATH = dict(TREE)
# parley cassandra … parses its own options (the runner's and the replication command's)
OWN = {("cassandra",): [o for a in cassandra_runner._parser("parley cassandra")._actions for o in a.option_strings],
       ("cassandra", "replication"): ["--check"]}


def test_the_tree_has_every_command():
    assert {p[0] for p, _ in TREE if p} >= {"up", "status", "node", "bus", "cassandra", "api", "discovery",
                                               "archiver", "presence", "pusher"}
    assert {("node", "drain"), ("bus", "status"), ("bus", "migrate"), ("bus", "stepdown")} <= set(TREE_BY_PATH)
    assert "--run-dir" in TREE_BY_PATH[("status",)] and "--nats-url" in TREE_BY_PATH[("node", "drain")]


@pytest.mark.parametrize("path", [p for p, _ in TREE] + list(OWN), ids=lambda p: " ".join(("parley", *p)))
def test_help_exits_0_and_lists_every_option(path, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*path, "--help"])
    shown = capsys.readouterr().out
    assert stop.value.code == 0
    assert shown.startswith("usage: parley")
    for option in OWN.get(path, TREE_BY_PATH.get(path, [])):
        assert option in shown, f"parley {' '.join(path)} --help does not show {option}"
    if path:
        assert len(shown.split("\n\n")) >= 3, "a description under the usage line"
