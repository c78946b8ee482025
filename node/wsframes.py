"""WebSocket text frames as a server sends them (RFC 6455 §5.2: FIN, opcode 1, no mask), for writing many
queued frames to a socket in one call. Pure.

Only for connections without permessage-deflate: a compressed connection's frames go through aiohttp.
The payload is not copied: a frame is its header followed by the payload as is, so one encoded ``msg``
frame is shared by every device it goes to.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

SHORT_HEADERS = _SHORT = tuple(bytes((0x81, n)) for n in range(126))  # by payload length, below 126
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_header(length: int) -> bytes:
    """The header of a final, unmasked text frame with a payload of ``length`` bytes."""
    if length < 126:
        return _SHORT[length]
    if length < 65536:
        return _MEDIUM.pack(0x81, 126, length)
    return _LONG.pack(0x81, 127, length)


def text_frames(payloads: Iterable[bytes]) -> list[bytes]:
    """Header, payload, header, payload, ...: what ``transport.writelines`` sends in one go."""
    parts: list[bytes] = []
    for payload in payloads:
        parts.append(text_header(len(payload)))
        parts.append(payload)
    return parts
