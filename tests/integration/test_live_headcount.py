"""A live room's viewer count across nodes (node/live/audience.py, ADR 0021) on the real two-node cluster: viewers on
both nodes are told the cluster's total as people join and leave, and a late joiner's ``live_joined`` already
counts the viewers on the other node."""

from __future__ import annotations

import pytest
from parley.tools.client import Device

from tests.integration.test_live import frames, join, new_room

pytestmark = pytest.mark.integration


def told(dev: Device, room: str) -> int | None:
    counts = [f["viewers"] for f in frames(dev, "live_viewers", room)]
    return counts[-1] if counts else None


async def test_viewers_on_two_nodes_are_told_the_clusters_total(world) -> None:
    a, b, c = await world.person("va"), await world.person("vb"), await world.person("vc")
    room = await new_room(a)
    da, db = await a.device(node=0), await b.device(node=1)
    await join(da, room)
    await join(db, room)
    await da.wait_for(lambda: told(da, room) == 2)
    await db.wait_for(lambda: told(db, room) == 2)
    dc = await c.device(node=0)
    joined = await join(dc, room)
    assert joined["viewers"] == 3  # the other node's viewer counted already
    await db.wait_for(lambda: told(db, room) == 3)
    await da.send_frame({"type": "live_leave", "room": room})
    await dc.send_frame({"type": "live_leave", "room": room})
    await db.wait_for(lambda: told(db, room) == 1)
