import os
import subprocess
import sys

import pytest
from parley.tools import runfile
from parley.tools.runfile import Process, RunInfo

from parley.errors import ParleyError


def info(pid: int) -> RunInfo:
    return RunInfo(up_pid=pid, started=1.5, urls={"api": "http://127.0.0.1:9", "nats": "nats://127.0.0.1:4"},
                   processes=[Process("node1", "node", 11, 8090, "http://127.0.0.1:8090", restarts=2),
                              Process("archiver", "archiver", 12, 8075, "http://127.0.0.1:8075")],
                   nats_credentials="/run/nats-auth/ops.json")


def test_a_written_file_reads_back_whole_and_private(tmp_path):
    path = runfile.write(tmp_path, info(os.getpid()))
    assert path == tmp_path / "run.json" and (path.stat().st_mode & 0o777) == 0o600
    back = runfile.read(tmp_path)
    assert back == info(os.getpid())
    assert back.url("api") == "http://127.0.0.1:9" and [p.name for p in back.of_role("node")] == ["node1"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left beside it


def test_no_file_or_a_dead_writer_reads_as_no_cluster(tmp_path):
    assert runfile.read(tmp_path) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runfile.write(tmp_path, info(int(gone.stdout)))
    assert runfile.read(tmp_path) is None
    runfile.remove(tmp_path)
    runfile.remove(tmp_path)
    assert not (tmp_path / "run.json").exists()


@pytest.mark.parametrize("text", ["", "[]", '{"version": 2}', '{"version": 1, "up_pid": "x"}'])
def test_an_unreadable_file_is_a_clear_error(tmp_path, text):
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(ParleyError) as err:
        runfile.read(tmp_path)
    assert err.value.code == "bad_run_file"


def test_a_missing_url_is_a_clear_error():
    with pytest.raises(ParleyError):
        info(1).url("discovery")


def test_a_file_from_before_the_bus_had_users_reads_without_credentials():
    text = runfile.encode(info(1)).replace('"nats_credentials": "/run/nats-auth/ops.json",', "")
    assert "nats_credentials" not in text and runfile.decode(text).nats_credentials == ""
