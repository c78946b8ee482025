"""Which connections have been silent for the idle timeout (protocol.md §10: closed with 4008). Pure: the
caller passes ``now`` (monotonic seconds) and closes what ``due`` hands back.

Invariant: the links are kept in the order they were last heard from — a plain dict whose ``heard`` pops the
link and puts it back at the end (insertion order is the dict's order) — so the longest silent is first and
``due`` stops at the first link not yet due: a sweep costs the links it closes, not one comparison per
connection (docs/adr/0046). No node per entry (an ``OrderedDict`` keeps one): a connection costs nothing more
than the one dict entry it had before. The pop leaves a hole that the dict's next resize compacts; a sweep
steps over the holes before the first live entry in C.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Link = TypeVar("Link", bound=Hashable)


class Silence(Generic[Link]):
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._heard: dict[Link, float] = {}  # link → when last heard from, oldest first

    def __len__(self) -> int:
        return len(self._heard)

    def heard(self, link: Link, now: float) -> None:
        """A frame from ``link`` (or its connection just opened): its silence starts again."""
        heard = self._heard
        heard.pop(link, None)
        heard[link] = now

    def forget(self, link: Link) -> None:
        """The connection ended."""
        self._heard.pop(link, None)

    def due(self, now: float) -> list[Link]:
        """The links silent for the timeout, longest silent first; forgotten here (the caller closes them)."""
        cutoff = now - self.timeout_s
        out: list[Link] = []
        for link, at in self._heard.items():
            if at >= cutoff:  # and so is every link after it
                break
            out.append(link)
        for link in out:
            del self._heard[link]
        return out
