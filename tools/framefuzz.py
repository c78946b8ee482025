"""A bounded, seeded WebSocket frame fuzzer for the protocol of docs/protocol.md: plans, no I/O.

``plan(rng, target, frames)`` turns a ``random.Random`` and what a fuzzing client knows (its token, its
conversations, friends, a cursor the server offered, message ids) into ``Episode``s: one connection each,
a list of ``Wire`` messages to write on it. The mix: valid frames of every client type (§4), the same
frames mutated (a field dropped, added, of the wrong type, a number out of range — 2^53, negative, huge,
a float —, unicode edge cases: lone surrogates, NUL, right-to-left marks, emoji, long strings), frames that
are not JSON objects, binary messages, floods of one frame, and last in an episode, a message that ends
the connection (invalid UTF-8 in a text message, one byte over ``max_frame_bytes``). Some episodes start
with something other than a good ``hello`` (bad JSON, another type, a bad token, a wrong ``v``).

The same seed plans the same episodes: a failure in CI is replayed with its printed seed. The runner that
writes the episodes to a live node and judges the answers is tests/integration/test_fuzz_ws.py (ADR 0017).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TEXT, BINARY, RAW_TEXT = "text", "binary", "raw_text"  # RAW_TEXT: a text message of bytes as they are

# values a mutated field takes: wrong types, numbers at and past the limits, unicode edge cases
ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53), 2**63, 2**64, 10**30, 1.5, -0.0, 1e308,
    "", " ", "\x00", "\ud800", "\udfff", "\u202e\u202d", "\ufeff", "\U0001f600" * 50, "a" * 1025, "é" * 3000,
    "\n\r\t", "dm.", "g.", "dm.a.b", "g." + "a" * 16, "c1..", "c1.AAAA.bbbb", [], [1, 2], {}, {"a": {"b": []}},
    "null", "0x10", "9007199254740993",
)
FRAME_TYPES = ("hello", "send", "typing", "read", "presence", "ack", "sync", "ping")


@dataclass(frozen=True)
class Target:
    """What the fuzzing client knows, so that valid frames get past the parser into the node's real work."""

    token: str
    convs: tuple[str, ...]  # conversations the fuzzing user is a member of
    users: tuple[str, ...]  # user ids (friends, strangers)
    cursor: str  # a cursor the server offered
    ids: tuple[int, ...] = ()  # message ids seen (for read.upto)
    max_frame_bytes: int = 65536


@dataclass(frozen=True)
class Wire:
    kind: str  # TEXT, BINARY or RAW_TEXT
    data: bytes
    ends: bool = False  # the node closes the connection on it (oversize, invalid UTF-8)


@dataclass
class Episode:
    """One connection: ``hello`` is False when the first wire is the fuzzed first frame; ``eager``: the
    wires go right after the hello, before its ``welcome`` (the node processes them after it, §2);
    ``abrupt``: the client closes right after its last wire, with sends and syncs still in flight."""

    wires: list[Wire] = field(default_factory=list)
    hello: bool = True
    eager: bool = False
    abrupt: bool = False


def encode(frame: Any) -> bytes:
    """JSON as a client may write it: lone surrogates escaped (``\\ud800``), the rest UTF-8."""
    return json.dumps(frame, ensure_ascii=False, allow_nan=False).encode("utf-8", "surrogatepass")


def text(frame: Any) -> Wire:
    data = encode(frame)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # a raw lone surrogate: write it escaped, as valid UTF-8 JSON
        data = json.dumps(frame, ensure_ascii=True).encode()
    return Wire(TEXT, data)


def cid(rng: random.Random) -> str:
    return f"fz-{rng.getrandbits(40):x}"


def valid_frames(rng: random.Random, t: Target) -> dict[str, Callable[[], dict[str, Any]]]:
    """A builder of a valid frame for every client frame type of §4."""
    conv = rng.choice(t.convs)
    return {
        "hello": lambda: {"type": "hello", "v": 2, "token": t.token, "cursor": t.cursor, "client": "fuzz/1"},
        "send": lambda: {"type": "send", "cid": cid(rng), "conv": conv, "body": rng.choice(BODIES)},
        "typing": lambda: {"type": "typing", "conv": conv, **({"state": rng.choice(("start", "stop"))}
                                                             if rng.random() < 0.7 else {})},
        "read": lambda: {"type": "read", "conv": conv, "upto": rng.choice(t.ids or (1,))},
        "presence": lambda: {"type": "presence", "users": rng.sample(t.users, rng.randint(1, len(t.users)))},
        "ack": lambda: {"type": "ack", "cursor": cursor(rng, t)},
        "sync": lambda: {"type": "sync", **({"cursor": cursor(rng, t)} if rng.random() < 0.8 else {})},
        "ping": lambda: {"type": "ping", **({"ts": rng.randrange(2**53)} if rng.random() < 0.8 else {})},
    }


def cursor(rng: random.Random, t: Target) -> str:
    """Mostly the real cursor; else the real one edited: a character changed, cut short, doubled."""
    c, roll = t.cursor, rng.random()
    if roll < 0.7 or not c:
        return c
    if roll < 0.8:
        i = rng.randrange(len(c))
        return c[:i] + rng.choice("A_-.z0") + c[i + 1:]
    return c[:rng.randrange(len(c))] if roll < 0.9 else c + c


BODIES = ("hi", "héllo wörld", "\U0001f600\u200d\U0001f4bb", "\u202eright to left", "tab\tnew\nline", "x" * 4096,
          "é" * 2048, "a\x00b", "<script>alert(1)</script>", "' OR 1=1 --")


def mutate(rng: random.Random, frame: dict[str, Any]) -> dict[str, Any]:
    """One to three changes to a valid frame."""
    out = dict(frame)
    for _ in range(rng.randint(1, 3)):
        keys = [k for k in out if k != "type"] or ["type"]
        match rng.randrange(7):
            case 0:
                out.pop(rng.choice(keys), None)
            case 1:
                out[rng.choice(keys)] = rng.choice(ODD_VALUES)
            case 2:
                out[rng.choice(("extra", "id", "after", "v", "cid", "state", "users", "__proto__"))] = \
                    rng.choice(ODD_VALUES)
            case 3:
                out["type"] = rng.choice((*ODD_VALUES[:6], "SEND", "teleport", "hello ", "msg", "welcome", "error"))
            case 4:
                out[rng.choice(keys)] = rng.choice(("x" * rng.randint(0, 5000), "\ud83d" * 10, "😀" * 1100))
            case 5 if "users" in out:
                out["users"] = [rng.choice((*t_users(out), "", "x" * 16, 5)) for _ in range(rng.randint(0, 130))]
            case _:
                out[rng.choice(keys)] = rng.choice((2**53, 2**53 - 1, -1, 2**64, 0, 1.0, "7"))
    return out


def t_users(frame: dict[str, Any]) -> list[Any]:
    users = frame.get("users")
    return list(users) if isinstance(users, list) and users else ["aaaaaaaaaaaaaaaa"]


def not_an_object(rng: random.Random) -> Wire:
    return rng.choice((
        Wire(TEXT, b"{oops"), Wire(TEXT, b""), Wire(TEXT, b"[]"), Wire(TEXT, b"null"), Wire(TEXT, b"42"),
        Wire(TEXT, b'"hello"'), Wire(TEXT, b'{"type": "ping"'), Wire(TEXT, b"[" * 5000 + b"]" * 5000),
        Wire(TEXT, b'{"type": "ping", "ts": NaN}'), Wire(TEXT, b'{"type": "ping", "type": "send"}'),
        Wire(TEXT, b'{"type": "ping", "ts": 1e400}'), Wire(TEXT, b"\xef\xbb\xbf{\"type\": \"ping\"}"),
        Wire(BINARY, b'{"type": "ping"}'), Wire(BINARY, bytes(rng.getrandbits(8) for _ in range(64))),
        Wire(BINARY, b""),
    ))


def ender(rng: random.Random, t: Target) -> Wire:
    """A message the node answers by closing: invalid UTF-8 (1007) or one byte over the frame limit (1009)."""
    if rng.random() < 0.5:
        bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"))
        return Wire(RAW_TEXT, b'{"type": "ping", "x": "' + bad + b'"}', ends=True)
    pad = b'{"type": "ping", "pad": ""}'
    return Wire(TEXT, pad[:-2] + b"x" * (t.max_frame_bytes + 1 - len(pad)) + b'"}', ends=True)


def first_frame(rng: random.Random, t: Target) -> Wire:
    """Anything but a good hello as a connection's first message."""
    hello = valid_frames(rng, t)["hello"]()
    return rng.choice((
        not_an_object(rng), text(mutate(rng, hello)), text({**hello, "v": rng.choice((1, 3, "2", 2.0, -1, 2**53))}),
        text({**hello, "token": rng.choice(("", "x", t.token[:-2] + "xx", t.token + "."))}),
        text(valid_frames(rng, t)[rng.choice(FRAME_TYPES[1:])]()), ender(rng, t),
    ))


def flood(rng: random.Random, t: Target) -> list[Wire]:
    kind = rng.choice(("ping", "typing", "send", "presence", "ack", "read", "sync"))
    frames = valid_frames(rng, t)
    return [text(frames[kind]()) for _ in range(rng.randint(20, 120))]


def live_wire(rng: random.Random, t: Target) -> list[Wire]:
    frames = valid_frames(rng, t)
    roll = rng.random()
    if roll < 0.35:
        return [text(frames[rng.choice(FRAME_TYPES)]())]
    if roll < 0.8:
        return [text(mutate(rng, frames[rng.choice(FRAME_TYPES)]()))]
    if roll < 0.95:
        return [not_an_object(rng)]
    if roll < 0.975:  # syncs in a row: each cancels the round before it (the ADR 0017 bug)
        return [text(frames["sync"]()) for _ in range(rng.randint(2, 8))]
    return flood(rng, t)


def episode(rng: random.Random, t: Target, budget: int) -> Episode:
    if rng.random() < 0.15:
        return Episode([first_frame(rng, t)], hello=False)
    wires: list[Wire] = []
    while len(wires) < min(budget, rng.randint(5, 60)):
        wires += [w for w in live_wire(rng, t) if len(w.data) <= t.max_frame_bytes]  # oversize only as an ender
    if rng.random() < 0.2:
        wires.append(ender(rng, t))
    return Episode(wires, eager=rng.random() < 0.2, abrupt=rng.random() < 0.15)


def plan(rng: random.Random, t: Target, frames: int) -> list[Episode]:
    """Episodes of ``frames`` messages in all (the last one may go a flood over)."""
    out: list[Episode] = []
    while (sent := sum(len(e.wires) for e in out)) < frames:
        out.append(episode(rng, t, frames - sent))
    return out
