"""The local runner's commit log: synced before a write is answered unless a benchmark asks otherwise."""

from pathlib import Path

import pytest
from parley.tools.cassandra_runner import cassandra_yaml

from parley.errors import ParleyError


def test_by_default_a_write_is_answered_after_its_commit_log_is_synced(tmp_path: Path):
    yaml = cassandra_yaml(tmp_path, 9042, 7000)
    assert "commitlog_sync: group\ncommitlog_sync_group_window: 15ms\n" in yaml
    assert "periodic" not in yaml


@pytest.mark.parametrize(("mode", "lines"), [
    ("batch", "commitlog_sync: batch\n"),
    ("periodic", "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n"),
])
def test_the_other_modes_for_benchmarks(tmp_path: Path, mode: str, lines: str):
    yaml = cassandra_yaml(tmp_path, 9042, 7000, commitlog_sync=mode)
    assert lines in yaml and yaml.count("commitlog_sync:") == 1


def test_an_unknown_mode_is_refused(tmp_path: Path):
    with pytest.raises(ParleyError) as refused:
        cassandra_yaml(tmp_path, 9042, 7000, commitlog_sync="sometimes")
    assert refused.value.code == "bad_setting"
