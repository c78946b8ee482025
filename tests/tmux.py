"""Terminals for tests: a private tmux server (its own socket), one session per program, typed into with
``send-keys`` and read with ``capture-pane``; the tests poll the pane's text, never sleep a fixed time.

Panes stay after their program exits (``remain-on-exit``), so a crash leaves its traceback to read.
``close`` kills the server and with it every program it ran.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from tests.poll import eventually

WIDTH, HEIGHT = 120, 40


class Tmux:
    def __init__(self, tmp: Path) -> None:
        self.socket = f"parley-test-{secrets.token_hex(4)}"
        self.conf = tmp / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g history-limit 10000\n")
        self.socket_path: Path | None = None

    def run(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), *args], capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args[:2])}: {out.stderr.strip()}")
        return out.stdout

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Pane:
        flags = [f"-e{k}={v}" for k, v in env.items()]
        self.run("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), *flags, *argv)
        if self.socket_path is None:
            self.socket_path = Path(self.run("display-message", "-p", "#{socket_path}").strip())
        return Pane(self, name)

    def close(self) -> None:
        if self.socket_path is not None:
            subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
            self.socket_path.unlink(missing_ok=True)  # kill-server leaves the socket file behind


class Pane:
    def __init__(self, tmux: Tmux, name: str) -> None:
        self.tmux, self.name = tmux, name

    def type(self, text: str, enter: bool = True) -> None:
        """Keys as typed (``-l``: literally, so ``/open`` is not a key name), then Enter."""
        if text:
            self.tmux.run("send-keys", "-t", self.name, "-l", text)
        if enter:
            self.tmux.run("send-keys", "-t", self.name, "Enter")

    def keys(self, *names: str) -> None:
        """Keys by tmux's names: ``C-u``, ``Enter``, ``C-d``."""
        self.tmux.run("send-keys", "-t", self.name, *names)

    def text(self) -> str:
        """Everything the pane shows and has scrolled away, lines joined where they wrapped."""
        return self.tmux.run("capture-pane", "-p", "-J", "-S", "-", "-t", self.name)

    def screen(self) -> str:
        return self.tmux.run("capture-pane", "-p", "-t", self.name)

    def dead(self) -> bool:
        return self.tmux.run("display-message", "-p", "-t", self.name, "#{pane_dead}").strip() == "1"

    async def shows(self, needle: str, times: int = 1, timeout: float = 20.0) -> str:
        """Until the pane shows ``needle`` (at least ``times`` times); its text then."""
        def check() -> str:
            text = self.text()
            assert text.count(needle) >= times, f"{self.name} shows:\n{text[-3000:]}"
            return text
        return await eventually(check, what=f"{self.name} showing {needle!r}", timeout=timeout, every=0.1)

    def count(self, needle: str) -> int:
        return self.text().count(needle)
