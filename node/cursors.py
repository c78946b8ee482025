"""The node's cursors: positions sealed for the devices, and the tokens they ack opened again (``parley.cursor``).

Each cursor offered to a device is sealed here (an HMAC), and the device acks it by sending the token back. A
token this node sealed lately is opened from memory: the node knows what it put in it, so the ack costs no
second HMAC, base64 decode and varint parse (ADR 0042: in a DM each device's position is its own, so nearly
every ack is of a token sealed for that device alone, and the old cache of opened tokens missed). A token not
in memory (sealed before a restart, by another node, or made up) is checked and opened as before, and kept.
Both maps are bounded (cleared when full, ADR 0016): a token forgotten is opened the slow way, never wrongly.
"""

from __future__ import annotations

from parley.cursor import open_cursor, seal_cursor
from parley.shards import Vector

KEPT_MAX = 4096  # sealed positions and opened tokens kept, each (devices at one position share one)


class Cursors:
    __slots__ = ("_key", "_sealed", "_opened", "_max")

    def __init__(self, key: bytes, kept_max: int = KEPT_MAX) -> None:
        self._key, self._max = key, kept_max
        self._sealed: dict[tuple[tuple[int, int], ...], str] = {}  # sorted position → token
        self._opened: dict[str, dict[int, int]] = {}  # token → the position it names (as ``open_cursor`` gives it)

    def seal(self, v: Vector) -> str:
        """``v`` sealed; devices standing at the same position share one sealing. The token is remembered as
        opened, for the ack that brings it back."""
        key = tuple(sorted(v.items()))
        sealed = self._sealed.get(key)
        if sealed is None:
            if len(self._sealed) >= self._max:
                self._sealed.clear()
            sealed = self._sealed[key] = seal_cursor(self._key, v)
            self._keep(sealed, {shard: pos for shard, pos in key if pos > 0})
        return sealed

    def open(self, token: str) -> dict[int, int]:
        """The position ``token`` names, a copy the caller may change; ``BadCursor`` if this deployment did not
        seal it (checked only for a token not sealed or opened here lately)."""
        opened = self._opened.get(token)
        if opened is None:
            opened = open_cursor(self._key, token)
            self._keep(token, opened)
        return dict(opened)

    def _keep(self, token: str, v: dict[int, int]) -> None:
        if len(self._opened) >= self._max:
            self._opened.clear()
        self._opened[token] = v
