"""A loopback TCP proxy that can be cut, healed and slowed: the WAN link between two regions in a test.

``Proxy(target_port).start()`` listens on 127.0.0.1 (a free port, or ``port``) and relays every connection to
``127.0.0.1:target_port``. Callers are sync code (``parley up``, pytest fixtures), so the proxy runs its
own asyncio loop in a daemon thread and its methods block until the loop has done what they ask.

``cut()`` aborts every relayed connection, both sides, and until ``heal()`` resets each new one as soon
as it is accepted. ``delay_s`` holds every chunk that long before passing it on, in both directions;
a chunk never overtakes an earlier one of the same direction.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

HOST = "127.0.0.1"
CHUNK = 65536
T = TypeVar("T")


def _abort(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


class Proxy:
    def __init__(self, target_port: int, *, delay_s: float = 0.0, port: int = 0) -> None:
        """``port``: where to listen (0: a free port, known once ``start`` returns)."""
        self.target_port, self.delay_s, self.port = target_port, delay_s, port
        self._cut = False
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def start(self) -> int:
        """Listen; the listening port. A closed proxy may start again (on the same port)."""
        if self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        self._cut = False
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcpproxy->{self.target_port}",
                                        daemon=True)
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._accept, HOST, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        """Abort every relayed connection and reset new ones until ``heal``."""
        self._run(self._cut_all())

    def heal(self) -> None:
        """Relay new connections again (the aborted ones stay gone; their peers reconnect)."""
        self._cut = False

    def close(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        self._run(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _cut_all(self) -> None:
        self._cut = True
        for client, upstream in list(self._links):
            _abort(client)
            _abort(upstream)
        self._links.clear()

    async def _shut(self) -> None:
        await self._cut_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # the relays of the aborted connections: finish them here, not as tasks destroyed with the loop
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            _abort(writer)
            return
        if self._cut:  # cut while we were connecting
            _abort(writer)
            _abort(up_writer)
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            _abort(writer)
            _abort(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction. With a delay, a reader stamps chunks into a queue and a writer releases each at
        its time, so the delay is added once per chunk and never reorders them."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._release(queue, writer))
        try:
            while chunk := await reader.read(CHUNK):
                queue.put_nowait((time.monotonic() + self.delay_s, chunk))
        except OSError:  # reset: pass the reset on rather than a clean end
            _abort(writer)
        finally:
            queue.put_nowait((0.0, b""))
            await sender

    async def _release(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
