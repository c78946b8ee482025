"""The screens a live send passes, in order (``parley.live.screening``): banned words first, then flood
rules. Each is built from the settings and the node's bus connection and owns its watchers (``start``/
``stop`` if it has them). The words screen (``parley.live.word_screen``, docs/adr/0019) is the first."""

from __future__ import annotations

from parley.bus import BusClient
from parley.live.screening import Screen
from parley.live.word_screen import WordScreen
from parley.settings import Settings


def build_screens(settings: Settings, bus: BusClient) -> list[Screen]:
    screens: list[Screen] = [WordScreen(settings, bus.jetstream())]
    return screens
