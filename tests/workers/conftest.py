"""A nats-server of its own for each worker test (JetStream in a temp dir, a free loopback port)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from parley.tools.cluster import Cluster


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    cluster = Cluster(tmp_path, nodes=0)
    cluster.start_nats()
    try:
        yield cluster.nats_url
    finally:
        cluster.shutdown()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
