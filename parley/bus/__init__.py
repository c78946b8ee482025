"""The NATS adapter: connections (``connection``), ordered dispatch (``ordered``, the one place that
reaches into nats-py), the message stream and its reads (``stream``), and the Protocols the node
depends on (``port``). Everything a process uses is re-exported here: ``from parley import bus``."""

from parley.bus.connection import close_quietly, connect
from parley.bus.ordered import BusClient, Handler
from parley.bus.port import Bus, StreamReads, StreamRow
from parley.bus.stream import (
    ARCHIVER,
    WRONG_LAST_SEQUENCE,
    JetStreamReads,
    archived_through,
    ensure_archiver_consumer,
    ensure_stream,
    last_id_of,
    last_of_subject,
    message_streams,
    parse_wrong_last_sequence,
    publish_chained,
    read_stream,
    stream_batches,
    stream_bounds,
    stream_config,
)

__all__ = [
    "ARCHIVER", "WRONG_LAST_SEQUENCE", "Bus", "BusClient", "Handler", "JetStreamReads", "StreamReads", "StreamRow",
    "archived_through", "close_quietly", "connect", "ensure_archiver_consumer", "ensure_stream",
    "last_id_of", "last_of_subject", "message_streams", "parse_wrong_last_sequence", "publish_chained", "read_stream",
    "stream_batches",
    "stream_bounds", "stream_config",
]
