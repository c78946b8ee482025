"""The node side of live rooms: viewers, the per-room subscription and fan-out, the send path."""
