"""``parley up``'s cluster secret: made once per run dir, readable by its owner only; its TLS settings."""

import argparse
import os
import stat

import pytest
from parley.tools.up import cluster_secret, prepare

from parley.errors import ParleyError
from parley.settings import MIN_SECRET_BYTES, Secret, Settings


def test_the_secret_file_is_made_0600_and_kept(tmp_path):
    old = os.umask(0)  # the mode comes from the open itself, whatever the umask
    try:
        made = cluster_secret(tmp_path, Secret(""))
    finally:
        os.umask(old)
    path = tmp_path / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(made.reveal().encode()) >= MIN_SECRET_BYTES and path.read_text() == made.reveal()
    assert cluster_secret(tmp_path, Secret("")) == made  # the next `parley up` continues with it


def test_a_configured_secret_wins_and_an_existing_file_is_not_rewritten(tmp_path):
    given = Secret("g" * 40)
    assert cluster_secret(tmp_path, given) == given and not (tmp_path / "secret").exists()
    (tmp_path / "secret").write_text("x" * 40 + "\n")
    assert cluster_secret(tmp_path, Secret("")) == Secret("x" * 40)


def test_a_tls_certificate_in_the_environment_without_tls_is_refused(tmp_path):
    base = Settings(tls_cert="/c.pem", tls_key="/k.pem")
    with pytest.raises(ParleyError, match="add --tls"):
        prepare(base, argparse.Namespace(run_dir=str(tmp_path), tls=False), [])
