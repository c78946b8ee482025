"""Running a live send through its screens (``parley.live.screening``): in order, stopping at the first
reject; a mask replaces the text the later screens see and the room gets. When the chain accepts, every
screen is told (``accepted``) so screens with state count the message."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from parley.live.screening import ACCEPT, Attempt, Screen, Verdict


async def run_screens(screens: Sequence[Screen], attempt: Attempt) -> Verdict:
    """``reject`` (the first screen's that rejected), or ``accept``/``mask`` with the text to send."""
    text, masked = attempt.text, False
    for screen in screens:
        verdict = await screen.screen(dataclasses.replace(attempt, text=text))
        if verdict.action == "reject":
            return verdict
        if verdict.action == "mask":
            text, masked = verdict.text, True
    return Verdict("mask", text=text) if masked else ACCEPT


def tell_accepted(screens: Sequence[Screen], attempt: Attempt, text: str) -> None:
    for screen in screens:
        screen.accepted(attempt, text)
