"""Device cursors on the wire: a position ``Vector`` sealed into an opaque string. Pure.

``c1.<positions>.<tag>``: positions are (shard, sequence) pairs as unsigned varints, base64url; the tag is
an HMAC-SHA256 (first 12 bytes) under a key derived from the deployment's secret. A cursor from another
deployment, an edited one or garbage fails ``open_cursor`` with ``BadCursor`` — the node answers
``bad_cursor`` and syncs the device as a new one — so a device can never claim positions it was not
given. Clients store the string as it is and send it back; they never look inside.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from parley.shards import MAX_SHARDS, Vector, nonzero

PREFIX = "c1."
TAG_BYTES = 12
MAX_LEN = 1024


class BadCursor(ValueError):
    pass


def cursor_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"parley cursor v1", hashlib.sha256).digest()


def _varint(n: int, out: bytearray) -> None:
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.digest(key, body, "sha256")[:TAG_BYTES]  # the one-shot C path: no HMAC object per cursor


def seal_cursor(key: bytes, v: Vector) -> str:
    body = bytearray()
    for shard, pos in sorted(nonzero(v).items()):
        _varint(shard, body)
        _varint(pos, body)
    return f"{PREFIX}{_b64(bytes(body))}.{_b64(_tag(key, bytes(body)))}"


def open_cursor(key: bytes, token: str) -> dict[int, int]:
    if not isinstance(token, str) or len(token) > MAX_LEN or not token.startswith(PREFIX):
        raise BadCursor("not a cursor this server made")
    try:
        body_text, tag_text = token[len(PREFIX):].split(".")
        body, tag = _unb64(body_text), _unb64(tag_text)
    except (ValueError, TypeError) as err:
        raise BadCursor("not a cursor this server made") from err
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise BadCursor("cursor from another deployment, or altered")
    out: dict[int, int] = {}
    numbers: list[int] = []
    n = shift = 0
    for byte in body:
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(n)
            n = shift = 0
    if shift or len(numbers) % 2:
        raise BadCursor("truncated cursor")
    for shard, pos in zip(numbers[::2], numbers[1::2], strict=True):
        if shard >= MAX_SHARDS:
            raise BadCursor("cursor names a shard that cannot exist")
        out[shard] = pos
    return out
