"""Where shards live: the deployment's regions and the shard streams each one homes. Pure.

``PARLEY_REGIONS`` (e.g. ``eu:4,us:4``) names the regions in order with the number of shard streams each
homes; shard indices are global and follow that order (``eu`` homes 0–3, ``us`` 4–7), so a message id
(``parley.shards``) names its shard, hence its region, everywhere. Unset, the deployment is one region
with ``PARLEY_SHARDS`` shards and its streams are placed wherever JetStream likes.

Invariants:
- A region's shards are placed in that region's NATS cluster (the stream's placement tag
  ``region:<name>``, ``placement_tag``); a conversation is homed in a shard of the region that created it
  (``home_shards``), so its sends and its order are decided in one region.
- Regions are only ever appended (with their shards after the existing ones): an existing shard never
  changes index or region, so ids and cursors stay valid. Moving a conversation is a re-home, not a
  renumbering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class LayoutError(ValueError):
    """A ``PARLEY_REGIONS`` value or a region name that does not fit the layout."""


@dataclass(frozen=True, slots=True)
class Layout:
    regions: tuple[tuple[str, int], ...]  # (region, shards it homes), in order; empty: one unnamed region
    total: int

    @classmethod
    def single(cls, shards: int) -> Layout:
        return cls((), shards)

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``eu:4,us:4`` -> two regions of four shards each (shards 0–3 and 4–7)."""
        regions: list[tuple[str, int]] = []
        for part in text.split(","):
            name, sep, count = part.strip().partition(":")
            if not sep or not REGION_RE.match(name) or not count.strip().isdigit() or int(count) < 1:
                raise LayoutError(f"regions: {part.strip()!r} is not <region>:<shards> (e.g. eu:4)")
            if name in dict(regions):
                raise LayoutError(f"regions: {name} is named twice")
            regions.append((name, int(count)))
        return cls(tuple(regions), sum(c for _, c in regions))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.regions)

    def shards_in(self, region: str) -> range:
        """The shards ``region`` homes (every shard when the deployment has no regions)."""
        if not self.regions:
            return range(self.total)
        start = 0
        for name, count in self.regions:
            if name == region:
                return range(start, start + count)
            start += count
        raise LayoutError(f"region {region!r} is not one of {', '.join(self.names)}")

    def region_of(self, shard: int) -> str | None:
        """The region homing ``shard`` (None without regions)."""
        start = 0
        for name, count in self.regions:
            if start <= shard < start + count:
                return name
            start += count
        return None

    def home_shards(self, region: str) -> range:
        """Where conversations created in ``region`` are homed."""
        return self.shards_in(region)

    @property
    def control_region(self) -> str | None:
        """The region holding the deployment-wide KV buckets (the first one)."""
        return self.regions[0][0] if self.regions else None


def placement_tag(region: str) -> str:
    """The nats-server ``server_tags`` entry, and the streams' placement tag, of ``region``."""
    return f"region:{region}"
