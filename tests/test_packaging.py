"""A non-editable install works away from the source tree (pyproject's packages, package-dir and data).

The project is installed (not editable, no dependencies: this venv has them) into a temp folder; from
another directory, with only that folder on ``PYTHONPATH``, ``parley up`` serves the chat page and the
live cluster page with their static files, the Locust smoke runs against it with nothing lost, and
Ctrl-C stops every process. Catches a module, a page or a config file that only the source tree has.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.integration.test_up import clean_env, up_command, wait_banner

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200, url
        return resp.read()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return target


def test_the_installed_package_runs_parley_up_and_the_locust_smoke(site: Path, tmp_path: Path) -> None:
    # the launcher's cheap Argon2 (tools/cluster.py): at the default cost a loaded machine spends the
    # smoke's 10 s on the users' logins
    env = clean_env(PYTHONPATH=str(site), PARLEY_ARGON2_TIME_COST="1", PARLEY_ARGON2_MEMORY_KIB="8192")
    where = subprocess.run([sys.executable, "-c", "import parley; print(parley.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the install, not the source tree
    cmd, ports, _ = up_command(tmp_path / "run")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        wait_banner(proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        api, discovery = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['discovery']}"
        assert b"<html" in get(f"{api}/").lower()
        assert get(f"{api}/static/main.js")
        assert b"<html" in get(f"{discovery}/cluster").lower()
        assert get(f"{discovery}/cluster/static/cluster.js")
        smoke = subprocess.run(
            [sys.executable, "-m", "parley.loadtest.run", "smoke", "--api", api, "--users", "10", "--run-time", "10",
             "--loss-timeout", "5", "--out", str(tmp_path / "smoke"), "--no-save"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert "OK: 0 failures, 0 lost" in smoke.stdout, smoke.stdout[-3000:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], f"stray processes: {alive}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_installed_package_has_the_terminal_client(site: Path, tmp_path: Path) -> None:
    """``parley chat`` lives in a subpackage (parley.tools.chat): one pyproject's packages could leave out."""
    out = subprocess.run([sys.executable, "-m", "parley", "chat", "--help"], cwd=tmp_path,
                         env=clean_env(PYTHONPATH=str(site)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--run-dir" in out.stdout
