"""Reading NATS's ``MSG`` and ``HMSG`` off the wire without nats-py's regexes, and handing them over without a
coroutine per message (docs/adr/0054).

nats-py's ``Parser.parse`` tries up to two regular expressions on a ``bytearray`` per control line, copies each
payload twice (a ``bytearray`` slice, then ``bytes``) and awaits the client's ``_process_msg`` coroutine for
every message. On an edge node a DM is three messages in (the PubAck of its publish, the republished copy
through each member's subscription), on the archiver one per message pulled. ``QuickParser`` reads those two
operations itself: a ``startswith``, a ``find`` of the line's end and a ``split``; payloads sliced once from the
bytes read; and a message for one of the client's inline subscriptions (``BusClient.dispatch_inline``) handled
in place. Everything else (``INFO``, ``PING``, ``PONG``, ``+OK``, ``-ERR``) and every other subscription's message
goes to nats-py as before, with the parser state nats-py keeps (``buf``, ``state``, ``msg_arg``, ``needed``,
``header_needed``): the two parse the same stream interchangeably, so what follows an ``INFO`` in one read is
nats-py's to finish, and a message split across reads is finished by whichever reads its end.

It overrides nats-py's parser (``Client._ps``), so what it relies on is checked by
tests/parley/bus/test_wire.py against the pinned nats-py.
"""

from __future__ import annotations

from typing import Protocol

from nats.errors import ProtocolError
from nats.protocol.parser import AWAITING_CONTROL_LINE, AWAITING_MSG_PAYLOAD, Parser

CRLF = b"\r\n"
RELIES_ON = ("buf", "state", "needed", "header_needed", "msg_arg")  # nats-py's parser state, shared


class Dispatch(Protocol):
    """What the parser hands messages to: inline when it can (True), else nats-py's ``_process_msg``."""

    def dispatch_inline(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool: ...

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                           headers: bytes | None) -> None: ...


class QuickParser(Parser):
    """nats-py's parser with ``MSG`` and ``HMSG`` read here (the module's docstring)."""

    nc: Dispatch

    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        if buf:  # the rest of an earlier read
            buf.extend(data)
            if self.state == AWAITING_MSG_PAYLOAD and len(buf) < self.needed + 2:
                return  # a large payload still coming: not copied again for each read
            data = bytes(buf)
            buf.clear()
        pos, end, nc = 0, len(data), self.nc
        while pos < end:
            if self.state == AWAITING_CONTROL_LINE:
                if data.startswith(b"HMSG ", pos):
                    start = pos + 5
                elif data.startswith(b"MSG ", pos):
                    start = pos + 4
                else:  # another operation (or a line not yet whole): nats-py's, with all that follows it
                    buf.extend(data[pos:] if pos else data)
                    await Parser.parse(self)
                    return
                line_end = data.find(CRLF, pos)
                if line_end < 0:
                    break
                self._control(data[start:line_end].split(), headed=start - pos == 5)
                pos = line_end + 2
                self.state = AWAITING_MSG_PAYLOAD
            else:
                needed = self.needed
                if end - pos < needed + 2:
                    break
                arg, header_size = self.msg_arg, self.header_needed
                if header_size:
                    headers: bytes | None = data[pos:pos + header_size]
                    payload = data[pos + header_size:pos + needed]
                    self.header_needed = 0
                else:
                    headers, payload = None, data[pos:pos + needed]
                pos += needed + 2
                self.state = AWAITING_CONTROL_LINE
                sid, subject, reply = arg["sid"], arg["subject"], arg["reply"]
                if not nc.dispatch_inline(sid, subject, reply, payload, headers):
                    await nc._process_msg(sid, subject, reply, payload, headers)
        if pos < end:
            buf.extend(data[pos:] if pos else data)

    def _control(self, args: list[bytes], headed: bool) -> None:
        """``MSG <subject> <sid> [reply] <size>`` or ``HMSG <subject> <sid> [reply] <header size> <size>``."""
        sizes = 2 if headed else 1
        if len(args) not in (2 + sizes, 3 + sizes):
            raise ProtocolError("nats: malformed MSG")
        try:
            sid, needed = int(args[1]), int(args[-1])
            header_size = int(args[-2]) if headed else 0
        except ValueError:
            raise ProtocolError("nats: malformed MSG") from None
        arg = self.msg_arg
        arg["subject"], arg["sid"] = args[0], sid
        arg["reply"] = args[2] if len(args) == 3 + sizes else b""
        self.needed, self.header_needed = needed, header_size
