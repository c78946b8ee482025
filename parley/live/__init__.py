"""Live rooms: huge audiences, relaxed order, no per-device replay (docs/adr/0018-live-rooms.md)."""
