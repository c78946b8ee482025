"""The efficiency bench's ledger (``loadtest.efficiency.settled_ledger``) against the session's cluster: what a
device missed while it was away (or too far behind) is counted late once a reconnect and sync bring it, never
lost; a message is lost only when its sender got SENT for it and a sync does not bring it. No figure is judged."""

from __future__ import annotations

from functools import partial

import pytest
from parley.loadtest import efficiency as eff
from parley.loadtest.harness.meter import CpuMeter
from parley.loadtest.harness.session import bounded

from tests.poll import eventually

pytestmark = pytest.mark.integration


async def test_messages_a_closed_device_missed_are_late_after_its_resync_not_lost(cluster, http) -> None:
    target = eff.Parley(http, cluster)
    a, b = await target.users(2)
    conv = await target.conversation(a, [b], "dm")
    devices = {u.id: d for u, d in zip((a, b), await bounded(
        [partial(eff.NumberedDevice.connect, http, target.url, u.id, u.token) for u in (a, b)], 2), strict=True)}
    load = eff.Load(target, CpuMeter({}), devices, [(devices[a.id], conv)], {conv: {b.id}}, 0)
    try:
        for _ in range(3):
            await load.send_one()
        await eventually(lambda: load.delivered() == 3, what="the first three delivered")
        receiver = devices[b.id]
        await receiver.ws.send_str("x" * (cluster.settings.max_frame_bytes + 1))  # the node closes it (1009)
        await eventually(lambda: receiver.reader is not None and receiver.reader.done(), what="b closed by the node")
        for _ in range(5):
            await load.send_one()
        await eventually(lambda: len(load.acked()) == 8, what="every send answered SENT")
        books = await eff.settled_ledger(load)
    finally:
        await eff.close_all(list(devices.values()))
    assert (books["sent"], books["acked"], books["delivered_once"]) == (8, 8, 8)
    assert (books["lost"], books["late"], books["duplicates"], books["resynced_devices"]) == (0, 5, 0, 1)
    assert books["closed_by_node"] == {"1009": 1} and books["refused"] == {}
