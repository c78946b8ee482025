"""WebSocket text frames as a server sends them (RFC 6455 §5.2: FIN, opcode 1, no mask), for writing many
queued frames to a socket in one call. Pure.

Only for connections without permessage-deflate: a compressed connection's frames go through aiohttp.
The payload is not copied: a frame is its header followed by the payload as is, so one encoded ``msg``
frame is shared by every device it goes to.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


# headers by payload length, made once each: every frame to every device needs one (ADR 0053)
# the short ones (payload below 126 bytes) made here; longer ones added as they are met, up to _HEADERS_MAX
HEADERS: dict[int, bytes] = {n: bytes((0x81, n)) for n in range(126)}
_HEADERS_MAX = 4096  # a ``msg`` frame is a few hundred bytes; a longer frame's header is packed each time


def text_header(length: int) -> bytes:
    """The header of a final, unmasked text frame with a payload of ``length`` bytes."""
    header = HEADERS.get(length)
    if header is None:
        header = _MEDIUM.pack(0x81, 126, length) if length < 65536 else _LONG.pack(0x81, 127, length)
        if length < _HEADERS_MAX:
            HEADERS[length] = header
    return header


def text_frames(payloads: Iterable[bytes]) -> list[bytes]:
    """Header, payload, header, payload, ...: what ``transport.writelines`` sends in one go. A header is looked up
    by its payload's length, not packed again for every frame to every device (ADR 0053)."""
    parts: list[bytes] = []
    append, headers = parts.append, HEADERS
    for payload in payloads:
        n = len(payload)
        append(headers.get(n) or text_header(n))
        append(payload)
    return parts
