"""``QuickParser`` reads what nats-py's parser reads, split anywhere, and hands inline subscriptions' messages over
without nats-py's per-message coroutine."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import ProtocolError
from nats.protocol.parser import Parser

from parley.bus.ordered import BusClient
from parley.bus.wire import RELIES_ON, QuickParser
from tests.poll import eventually

HEADERS = b"NATS/1.0\r\nNats-Stream: MSG_0\r\nNats-Sequence: 42\r\n\r\n"
STREAM = (
    b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n"
    + b"MSG a.b 1 5\r\nhello\r\n"
    + b"HMSG dlv.dm.x.y 2 %d %d\r\n%bbody\r\n" % (len(HEADERS), len(HEADERS) + 4, HEADERS)
    + b"MSG _INBOX.p.q.1 3 _INBOX.reply 2\r\n{}\r\n"
    + b"PING\r\n+OK\r\nPONG\r\n"
    + b"HMSG t 4 r.s %d %d\r\n%b\r\n" % (len(HEADERS), len(HEADERS), HEADERS)  # headers, no payload
    + b"MSG empty 5 0\r\n\r\n"
    + b"MSG  spaced\t6  3\r\nabc\r\n"  # the regexes take any whitespace between arguments
)


class Recorder:
    """The parser's consumer: what it was handed and how (inline, or through the coroutine)."""

    def __init__(self, inline: set[int]) -> None:
        self.inline, self.got = inline, []  # type: ignore[var-annotated]

    def dispatch_inline(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bool:
        if sid not in self.inline:
            return False
        self.got.append(("inline", sid, subject, reply, data, headers))
        return True

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        self.got.append(("process", sid, subject, reply, data, headers))

    async def _process_info(self, info: dict[str, Any]) -> None:
        self.got.append(("info", info["server_id"]))

    async def _process_ping(self) -> None:
        self.got.append(("ping",))

    async def _process_pong(self) -> None:
        self.got.append(("pong",))


async def parsed(parser_of: type[Parser], chunks: list[bytes], inline: set[int]) -> list[tuple[Any, ...]]:
    rec = Recorder(inline)
    parser = parser_of(rec)
    for chunk in chunks:
        await parser.parse(chunk)
    return [("process", *g[1:]) if g[0] == "inline" else g for g in rec.got] if parser_of is Parser else rec.got


def test_the_parser_state_shared_with_nats_py_is_still_there():
    parser = Parser()
    for name in RELIES_ON:
        assert hasattr(parser, name), f"nats-py {nats.__version__}'s parser has no {name}: revisit parley/bus/wire.py"
    assert isinstance(BusClient()._ps, QuickParser)


async def test_split_anywhere_it_reads_what_nats_py_reads():
    whole = await parsed(Parser, [STREAM], set())
    assert len([g for g in whole if g[0] == "process"]) == 6
    for cut in range(1, len(STREAM)):
        for cut2 in (cut + 1, cut + 7, len(STREAM)):
            chunks = [STREAM[:cut], STREAM[cut:cut2], STREAM[cut2:]]
            got = await parsed(QuickParser, chunks, set())
            assert got == whole, f"split at {cut}, {cut2}"


async def test_inline_subscriptions_skip_the_coroutine_and_others_keep_it():
    """What follows another operation in the same read is nats-py's to finish (a PING: rare)."""
    at_ping, at_last = STREAM.index(b"PING"), STREAM.index(b"MSG  spaced")
    start = STREAM.index(b"MSG a.b")
    got = await parsed(QuickParser, [STREAM[start:at_ping], STREAM[at_ping:at_last], STREAM[at_last:]], {1, 2, 4, 6})
    assert [(g[0], g[1]) for g in got if g[0] in ("inline", "process")] == [
        ("inline", 1), ("inline", 2), ("process", 3), ("process", 4), ("process", 5), ("inline", 6)]
    assert ("inline", 2, b"dlv.dm.x.y", b"", b"body", HEADERS) in got
    assert ("process", 3, b"_INBOX.p.q.1", b"_INBOX.reply", b"{}", None) in got
    assert ("inline", 6, b"spaced", b"", b"abc", None) in got


@pytest.mark.parametrize("line", [b"MSG a 1\r\n", b"MSG a x 3\r\n", b"HMSG a 1 2\r\n", b"MSG a 1 b c 3\r\n",
                                  b"HMSG a 1 r x 3\r\n"])
async def test_a_malformed_line_is_a_protocol_error(line):
    with pytest.raises(ProtocolError):
        await QuickParser(Recorder(set())).parse(line + b"abc\r\n")


async def test_messages_from_a_real_server_arrive_whole_and_inline_ones_never_take_the_coroutine(nats_url):
    """Large payloads come over many reads; the ordered, headed and raw subscriptions' messages are handled in the
    parser, nats-py's own subscriptions' (a request's reply, a callback subscription) as before."""

    class Counting(BusClient):
        coroutines = 0

        async def _process_msg(self, *args: Any) -> None:
            Counting.coroutines += 1
            await super()._process_msg(*args)

    nc = Counting()
    await nc.connect(nats_url)
    got: list[tuple[str, bytes]] = []
    await nc.subscribe_ordered("o.*", lambda s, h, d: got.append((s, d)))
    await nc.subscribe_headed("h.*", lambda s, h, d: got.append((s, (h or b"") + d)))
    await nc.subscribe_raw("r.*", lambda s, r, h, d: got.append((s.decode(), d)))
    big = bytes(range(256)) * 2000  # 512 KB: many reads
    expected = []
    for i in range(50):
        for prefix in ("o", "h", "r"):
            body = big if i % 10 == 0 else b"%d" % i
            await nc.publish(f"{prefix}.{i}", body)
            expected.append((f"{prefix}.{i}", body))
    await nc.flush()
    await eventually(lambda: len(got) == len(expected), what="every message")
    assert sorted(got) == sorted(expected)
    assert [s for s, _ in got if s.startswith("o.")] == [f"o.{i}" for i in range(50)]
    assert Counting.coroutines == 0

    async def respond(msg: Msg) -> None:
        await msg.respond(msg.data[::-1])

    echo = await nc.subscribe("svc", cb=respond)  # nats-py's own, with a task
    reply = await nc.request("svc", b"abc", timeout=5)
    assert reply.data == b"cba"
    assert Counting.coroutines == 2  # the request and its reply went nats-py's way
    await echo.unsubscribe()
    await asyncio.wait_for(nc.close(), 10)
