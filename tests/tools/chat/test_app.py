"""Where ``parley chat`` finds the API (parley.tools.chat.app): --api, else run.json, else the default."""

import os

import pytest
from parley.tools import runfile
from parley.tools.chat.app import DEFAULT_API, api_url, parser
from parley.tools.runfile import RunInfo


def test_an_explicit_url_wins(tmp_path):
    runfile.write(tmp_path, RunInfo(up_pid=os.getpid(), started=0, urls={"api": "http://127.0.0.1:9001"}))
    assert api_url("http://10.0.0.5:8080/", str(tmp_path)) == "http://10.0.0.5:8080"


def test_the_run_file_of_a_running_parley_up(tmp_path):
    runfile.write(tmp_path, RunInfo(up_pid=os.getpid(), started=0, urls={"api": "http://127.0.0.1:9001/"}))
    assert api_url(None, str(tmp_path)) == "http://127.0.0.1:9001"


def test_no_run_file_means_the_default_port(tmp_path):
    assert api_url(None, str(tmp_path / "nothing here")) == DEFAULT_API == "http://127.0.0.1:8080"


def test_signup_needs_a_user(capsys):
    from parley.tools.chat.app import main

    with pytest.raises(SystemExit):
        main(["--signup"])
    assert "--signup needs --user" in capsys.readouterr().err
    assert parser().parse_args([]).run_dir == ".parley"
