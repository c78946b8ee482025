"""How alike two short messages are, and how many links one holds: cheap, pure, bounded.

``normalise`` folds case and collapses whitespace, so "BUY  now" repeats "buy now". ``similarity`` is the
Jaccard index of the two texts' character 3-gram sets (shingles), at most ``MAX_CHARS`` of each text
(a long message costs no more than a short one): 1.0 for the same text, near it for a word changed or
a character added, low for different texts. ``links`` counts URLs and bare domains ("spam.example/x").
"""

from __future__ import annotations

import re

MAX_CHARS = 280  # only the start of a text is compared: bounded cost per message
SHINGLE = 3
_SPACE = re.compile(r"\s+")
_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ly|gg|tv|me|co|ru|"
                   r"info|xyz|app|link|site|biz|kr)\b(?:/\S*)?")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()[:MAX_CHARS]


def shingles(normalised: str) -> frozenset[str]:
    """The text's character 3-grams (the text itself when shorter)."""
    if len(normalised) <= SHINGLE:
        return frozenset((normalised,))
    return frozenset(normalised[i:i + SHINGLE] for i in range(len(normalised) - SHINGLE + 1))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard index of two shingle sets: 1.0 same, 0.0 nothing shared."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def links(text: str) -> int:
    return len(_LINK.findall(text))
