"""The terminal: read lines, print lines, show the status. Two shells over the same chat:

- ``PromptScreen`` (a terminal, tmux included): prompt_toolkit keeps the input line at the bottom, with a
  status bar under it (who you are, the open conversation, the connection, who is typing, how far your
  last message got); incoming lines print above it without garbling what is being typed. Each change of
  the input line is reported (``on_text``), which is how typing indicators are sent. Passwords are read
  without echo.
- ``PlainScreen`` (stdin or stdout not a terminal, or ``--plain``: scripts, pipes): lines from stdin, read
  one at a time on a daemon thread (a blocked read never holds the process), plain prints, and the status
  bar's changing parts (typing, receipts) printed as ``~`` lines when they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from parley.tools.chat.state import Status


class Screen(Protocol):
    async def read_line(self) -> str | None: ...  # None: end of input

    async def read_secret(self, prompt: str) -> str | None: ...

    def show(self, lines: list[str]) -> None: ...

    def refresh(self) -> None: ...  # the status may have changed

    def close(self) -> None: ...


def open_screen(plain: bool, status: Callable[[], Status], prompt: Callable[[], str],
                on_text: Callable[[str], None]) -> Screen:
    if plain or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return PlainScreen(status)
    return PromptScreen(status, prompt, on_text)


class PromptScreen:
    def __init__(self, status: Callable[[], Status], prompt: Callable[[], str],
                 on_text: Callable[[str], None]) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.patch_stdout import patch_stdout

        self._status = status
        self.session: PromptSession[str] = PromptSession(
            prompt, bottom_toolbar=lambda: " " + status().render(), refresh_interval=0.5, erase_when_done=True)
        self.session.default_buffer.on_text_changed += lambda buffer: on_text(buffer.text)
        self._patch = patch_stdout()
        self._patch.__enter__()

    async def read_line(self) -> str | None:
        try:
            return await self.session.prompt_async()
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""

    async def read_secret(self, prompt: str) -> str | None:
        from prompt_toolkit import PromptSession

        try:
            return await PromptSession[str]().prompt_async(prompt, is_password=True)
        except (EOFError, KeyboardInterrupt):
            return None

    def show(self, lines: list[str]) -> None:
        for line in lines:
            print(line, flush=True)

    def refresh(self) -> None:
        if self.session.app.is_running:
            self.session.app.invalidate()

    def close(self) -> None:
        self._patch.__exit__(None, None, None)


class PlainScreen:
    def __init__(self, status: Callable[[], Status]) -> None:
        self._status = status
        self._shown = ("", "")
        self._eof = False

    async def read_line(self) -> str | None:
        if self._eof:
            return None
        line = await _in_thread(sys.stdin.readline)
        if not line:
            self._eof = True
            return None
        return line.rstrip("\n")

    async def read_secret(self, prompt: str) -> str | None:
        if sys.stdin.isatty():  # --plain in a terminal: still no echo
            return await _in_thread(lambda: getpass.getpass(prompt))
        return await self.read_line()

    def show(self, lines: list[str]) -> None:
        for line in lines:
            print(line, flush=True)

    def refresh(self) -> None:
        status = self._status()
        now = (status.typing, status.receipt if status.receipt != "sending…" else self._shown[1])
        for new, old in zip(now, self._shown, strict=True):
            if new and new != old:
                print(f"~ {new}", flush=True)
        self._shown = now

    def close(self) -> None:
        pass


async def _in_thread(read: Callable[[], str]) -> str:
    """``read`` on a daemon thread: a read still blocked when the chat ends never holds the process."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(value: str) -> None:
        if not done.done():
            done.set_result(value)

    def run() -> None:
        try:
            value = read()
        except (OSError, EOFError, KeyboardInterrupt):
            value = ""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, value)

    threading.Thread(target=run, name="stdin", daemon=True).start()
    return await done
