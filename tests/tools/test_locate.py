"""Where a command looks for its cluster: flags over PARLEY_* variables over run.json over the defaults."""

import os

import pytest
from parley.tools import runfile
from parley.tools.locate import locate, resolve
from parley.tools.runfile import Process, RunInfo

RUN = RunInfo(up_pid=1, started=0.0,
              urls={"api": "http://127.0.0.1:9180", "discovery": "http://127.0.0.1:9170", "nats": "nats://127.0.0.1:9422"},
              processes=[Process("archiver", "archiver", 5, 9175, "http://127.0.0.1:9175"),
                         Process("archiver2", "archiver", 6, 9275, "http://127.0.0.1:9275"),
                         Process("presence", "presence", 7, 9176, "http://127.0.0.1:9176")])


@pytest.mark.parametrize(("env", "info", "flags", "want"), [
    ({}, None, {}, {"api": "http://127.0.0.1:8080", "discovery": "http://127.0.0.1:8070",
                    "nats": "nats://127.0.0.1:4222", "archiver": "http://127.0.0.1:8075",
                    "presence": "http://127.0.0.1:8076"}),
    ({}, RUN, {}, {"api": "http://127.0.0.1:9180", "discovery": "http://127.0.0.1:9170",
                   "nats": "nats://127.0.0.1:9422", "archiver": "http://127.0.0.1:9175",
                   "presence": "http://127.0.0.1:9176"}),
    ({"PARLEY_DISCOVERY_URL": "http://d:1/", "PARLEY_ARCHIVER_PORT": "7"}, RUN, {},
     {"discovery": "http://d:1", "archiver": "http://127.0.0.1:7", "nats": "nats://127.0.0.1:9422"}),
    ({"PARLEY_NATS_URL": "nats://env:1"}, RUN, {"nats": "nats://flag:2", "api": "http://flag:3"},
     {"nats": "nats://flag:2", "api": "http://flag:3", "discovery": "http://127.0.0.1:9170"}),
])
def test_each_url_comes_from_the_first_that_names_it(env, info, flags, want):
    where = resolve(env, info, ".parley", **flags)
    assert {k: getattr(where, k) for k in want} == want
    assert where.found == (info is not None)


def test_what_a_command_says_when_nothing_answers():
    guessed = resolve({}, None, "/tmp/x")
    assert guessed.guessed("discovery") and guessed.not_answering("discovery", "--discovery-url") == (
        "no cluster found in /tmp/x (start one with `make run`), or pass --run-dir DIR or --discovery-url URL")
    found = resolve({}, RUN, "/tmp/x")
    assert found.not_answering("nats", "--nats-url") == (
        "nats at nats://127.0.0.1:9422 is not answering (as run.json in /tmp/x says)")
    given = resolve({}, None, "/tmp/x", discovery="http://h:1")
    assert given.not_answering("discovery", "--discovery-url") == "discovery at http://h:1 is not answering"


def test_locate_reads_the_run_dir_of_a_live_parley_up_only(tmp_path):
    assert locate({}, tmp_path).found is False
    runfile.write(tmp_path, RunInfo(**{**RUN.__dict__, "up_pid": os.getpid()}))
    assert locate({}, tmp_path).discovery == "http://127.0.0.1:9170"
    assert locate({"PARLEY_RUN_DIR": str(tmp_path)}).nats == "nats://127.0.0.1:9422"


def test_operators_commands_find_the_ops_credentials_in_run_json_or_the_run_dir(tmp_path):
    from parley.tools import busauth

    assert locate({}, tmp_path).nats_credentials == ""
    auth = busauth.ensure(tmp_path)  # a run dir whose parley up is gone still has its users
    assert locate({}, tmp_path).nats_credentials == str(auth.file("ops"))
    runfile.write(tmp_path, RunInfo(**{**RUN.__dict__, "up_pid": os.getpid(), "nats_credentials": "/x/ops.json"}))
    assert locate({}, tmp_path).nats_credentials == "/x/ops.json"
    assert busauth.credentials_settings(auth.file("ops"))["nats_user"] == "ops"
