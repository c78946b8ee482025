"""The screens a live send passes, in order (``parley.live.screening``): banned words first, then flood
rules. Each is built from the settings and the node's bus connection and owns its watchers (``start``/
``stop`` if it has them). The words screen (``parley.live.word_screen``, docs/adr/0019) is the first; the
flood rules, time-outs and bans (``parley.live.flood_screen``, docs/adr/0020) come after it, so a message
refused for a banned word costs its sender no flood warning and a masked one is judged as masked."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from parley.bus import BusClient
from parley.live.flood_screen import FloodScreen
from parley.live.screening import Screen
from parley.live.word_screen import WordScreen
from parley.metrics import FloodMetrics
from parley.settings import Settings


def build_screens(settings: Settings, bus: BusClient, registry: CollectorRegistry | None = None) -> list[Screen]:
    return [WordScreen(settings, bus.jetstream()), FloodScreen(settings, bus, FloodMetrics(registry))]
