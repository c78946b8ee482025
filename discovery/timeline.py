"""Node states over time, for the cluster page: a node that drains, leaves or falls silent stays on the page
with that state for ``linger_s`` instead of vanishing, so an operator sees a drain happen. Pure: records,
deletions and ``now`` come in, a state per node comes out; the registry watch is discovery/app.py's.

States: ``eligible`` (serving), ``full``, ``draining`` (still beating, taking no new clients), ``stale``
(its entry is older than the TTL: silent, killed or cut off), ``drained`` (it deleted its entry after
draining), ``left`` (it deleted its entry without draining: a plain stop). Only the first three are live;
the rest are ``gone`` and shown until ``linger_s`` after they happened. Placement never sees this module:
it reads the live records alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.registry import NodeRecord

LIVE = ("eligible", "full", "draining")
GONE = ("stale", "drained", "left")


@dataclass(frozen=True, slots=True)
class Departure:
    record: NodeRecord  # the last entry the node wrote
    at: float  # when its entry was deleted (unix seconds)


@dataclass(frozen=True, slots=True)
class NodeView:
    record: NodeRecord
    state: str  # one of LIVE + GONE
    since: float | None  # when it entered this state, when known (unix seconds)
    hides_at: float | None  # a gone node leaves the page then; None while live

    @property
    def gone(self) -> bool:
        return self.state in GONE


def live_state(n: NodeRecord, *, now: float, ttl: float) -> str:
    if now - n.updated_at >= ttl:
        return "stale"
    if n.draining:
        return "draining"
    return "full" if n.connections >= n.max_connections else "eligible"


class NodeTimeline:
    """What discovery remembers of each node beyond its current registry entry: when it started draining,
    and the nodes whose entries were deleted (for ``linger_s``)."""

    def __init__(self, linger_s: float = 300.0) -> None:
        self.linger_s = linger_s
        self.departed: dict[str, Departure] = {}
        self.draining_since: dict[str, float] = {}

    def seen(self, record: NodeRecord) -> None:
        self.departed.pop(record.id, None)  # back (restarted under the same id)
        if record.draining:
            self.draining_since.setdefault(record.id, record.updated_at)
        else:
            self.draining_since.pop(record.id, None)

    def deleted(self, last: NodeRecord, now: float) -> None:
        self.departed[last.id] = Departure(last, now)

    def prune(self, now: float) -> None:
        for gone in [k for k, d in self.departed.items() if now - d.at >= self.linger_s]:
            del self.departed[gone]
            self.draining_since.pop(gone, None)

    def view(self, current: dict[str, NodeRecord], *, now: float, ttl: float) -> list[NodeView]:
        """Every node to show, by region then id: live ones, silent ones for ``linger_s`` after they went
        silent, deleted ones for ``linger_s`` after they left."""
        out = []
        for n in current.values():
            state = live_state(n, now=now, ttl=ttl)
            if state == "stale":
                silent_at = n.updated_at + ttl
                if now - silent_at < self.linger_s:
                    out.append(NodeView(n, state, silent_at, silent_at + self.linger_s))
            else:
                out.append(NodeView(n, state, self.draining_since.get(n.id) if state == "draining" else None, None))
        for key, d in self.departed.items():
            if key not in current and now - d.at < self.linger_s:
                out.append(NodeView(d.record, "drained" if d.record.draining else "left", d.at, d.at + self.linger_s))
        return sorted(out, key=lambda v: (v.record.region, v.record.id))
