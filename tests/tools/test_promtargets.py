"""Prometheus file_sd targets from what parley up started: one file per job, every process of the role."""

from parley.tools import promtargets
from parley.tools.runfile import Process, RunInfo

INFO = RunInfo(up_pid=1, started=0.0, urls={}, processes=[
    Process("nats", "nats", 1, 9422, "nats://127.0.0.1:9422"),
    Process("node1", "node", 2, 9190, "http://127.0.0.1:9190"),
    Process("node2", "node", 3, 9191, "http://127.0.0.1:9191"),
    Process("archiver", "archiver", 4, 9175, "http://127.0.0.1:9175"),
    Process("archiver2", "archiver", 5, 9275, "http://127.0.0.1:9275"),
    Process("api", "api", 6, 9180, "http://127.0.0.1:9180"),
])


def test_each_job_lists_every_process_of_its_role_and_nothing_else():
    got = promtargets.targets(INFO)
    assert set(got) == {"parley-node", "parley-api", "parley-discovery", "parley-archiver", "parley-presence",
                        "parley-pusher"}
    assert got["parley-node"] == [{"targets": ["127.0.0.1:9190", "127.0.0.1:9191"], "labels": {}}]
    assert got["parley-archiver"] == [{"targets": ["127.0.0.1:9175", "127.0.0.1:9275"], "labels": {}}]
    assert got["parley-pusher"] == [] and got["parley-discovery"] == []  # none started: no target to be down


def test_write_replaces_one_file_per_job(tmp_path):
    paths = promtargets.write(tmp_path, INFO)
    assert sorted(p.name for p in paths) == sorted(f"{job}.json" for job in promtargets.JOBS.values())
    assert sorted(p.name for p in (tmp_path / "prometheus").iterdir()) == sorted(p.name for p in paths)
    assert promtargets.file_of(tmp_path, "parley-api").read_text().startswith('[\n  {\n    "targets": [')
