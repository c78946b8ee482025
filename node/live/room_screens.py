"""The screens a live send passes, in order (``parley.live.screening``): banned words first, then flood
rules. Each is built from the settings and the node's bus connection and owns its watchers (``start``/
``stop`` if it has them). None ship yet: the words and flood screens add one line each here."""

from __future__ import annotations

from parley.bus import BusClient
from parley.live.screening import Screen
from parley.settings import Settings


def build_screens(settings: Settings, bus: BusClient) -> list[Screen]:
    screens: list[Screen] = []
    return screens
