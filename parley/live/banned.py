"""Banned-word lists and their matcher: entries folded by ``parley.live.words`` into one Aho–Corasick
automaton (pyahocorasick) per list, searched over the folded message; never a regular expression.

An ``Entry`` is a word or phrase, its ``action`` (``reject``: the message is refused with ``banned_word``;
``mask``: the offending original characters become ``*``) and whether it is a ``substring`` entry. By
default an entry in a space-separated script matches whole folded words only (``cunt`` is not found in
``Scunthorpe``, ``ass`` not in ``class``); a substring entry matches anywhere; Hangul, CJK and kana entries
always match anywhere (``parley.live.words.needs_word_boundaries``). A text run must be at least as long as
the entry's (``words`` rule 4). ``Matcher.judge`` gives the decision for one message against any number of
lists: reject if a reject entry matches; otherwise mask every match, again until nothing matches (masking
can bring two letters together). Pure: no I/O.

Keys of the NATS KV bucket (docs/adr/0019): ``<list>.<digest>``, the list being ``global`` or
``room.<base32 of the room id>``, the digest the folded entry's; the value the entry as JSON. Adding the
same word twice is one key (idempotent; the later action wins); removing it deletes that key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import ahocorasick
import orjson

from parley.live.words import Normalised, fold_ascii, needs_word_boundaries, normalise

EntryAction = Literal["reject", "mask"]
ACTIONS: tuple[EntryAction, ...] = ("reject", "mask")
MAX_WORD_CHARS = 100
MASK = "*"
GLOBAL = "global"


class BadEntry(ValueError):
    """A word that cannot be an entry (empty once folded, too long, an unknown action)."""


@dataclass(frozen=True)
class Entry:
    word: str  # as the operator typed it (lists show it)
    action: EntryAction = "reject"
    substring: bool = False

    def __post_init__(self) -> None:
        if not 0 < len(self.word) <= MAX_WORD_CHARS:
            raise BadEntry(f"a word has 1 to {MAX_WORD_CHARS} characters")
        if self.action not in ACTIONS:
            raise BadEntry(f"action is one of {', '.join(ACTIONS)}")
        if not self.folded.chars.replace(" ", ""):
            raise BadEntry("the word has no letters once normalised")

    @cached_property
    def folded(self) -> Normalised:
        return normalise(self.word)

    def as_json(self) -> dict[str, Any]:
        return {"word": self.word, "action": self.action, "substring": self.substring}

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        if not isinstance(data, dict) or not isinstance(data.get("word"), str):
            raise BadEntry("an entry is an object with a word")
        substring = data.get("substring", False)
        if not isinstance(substring, bool):
            raise BadEntry("substring is true or false")
        return cls(data["word"], data.get("action", "reject"), substring)


def list_name(room: str | None) -> str:
    """The global list (``room`` None) or a room's, as the first token(s) of its keys."""
    if room is None:
        return GLOBAL
    return "room." + base64.b32encode(room.encode()).decode().rstrip("=").lower()


def entry_key(list_: str, word: str) -> str:
    """The key of ``word`` in ``list_``: one per folded form (letters and their run lengths: ``bad`` and
    ``B.A.D`` are one entry, ``bad`` and ``baad`` two)."""
    folded = normalise(word)
    identity = folded.chars + "\0" + ",".join(map(str, folded.runs))
    return f"{list_}.{hashlib.sha256(identity.encode()).hexdigest()[:32]}"


def list_of_key(key: str) -> str:
    return key.rsplit(".", 1)[0]


def encode(entry: Entry) -> bytes:
    return orjson.dumps(entry.as_json())


def decode(value: bytes) -> Entry:
    return Entry.from_json(orjson.loads(value))


@dataclass(frozen=True)
class Hit:
    start: int  # original text [start, end)
    end: int
    action: EntryAction


class Automaton:
    """One list's entries, compiled. Built once per change of the list; searched per message."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        found: dict[str, list[tuple[tuple[int, ...], bool, EntryAction]]] = {}
        for entry in entries:
            folded = entry.folded
            whole = not entry.substring and needs_word_boundaries(folded.chars)
            found.setdefault(folded.chars, []).append((folded.runs, whole, entry.action))
        self.size = sum(len(v) for v in found.values())
        self._automaton = ahocorasick.Automaton()
        for key, value in found.items():
            self._automaton.add_word(key, (len(key), tuple(value)))
        if found:
            self._automaton.make_automaton()

    def may_hit(self, folded: str) -> bool:
        """Whether an entry may match the folded text ``folded``: its letters occur there, as a whole word
        if it needs one (the run lengths are left to ``hits``)."""
        if not self.size:
            return False
        for last, (length, candidates) in self._automaton.iter(folded):
            start, end = last + 1 - length, last + 1
            bounded = (start == 0 or folded[start - 1] == " ") and (end == len(folded) or folded[end] == " ")
            if bounded or any(not whole for _, whole, _ in candidates):
                return True
        return False

    def hits(self, text: Normalised) -> list[Hit]:
        if not self.size:
            return []
        out = []
        for last, (length, candidates) in self._automaton.iter(text.chars):
            start = last + 1 - length
            for runs, whole, action in candidates:
                if _fits(text, start, last + 1, runs, whole):
                    out.append(Hit(*text.original_span(start, last + 1), action))
        return out


def _fits(text: Normalised, start: int, end: int, runs: tuple[int, ...], whole: bool) -> bool:
    if any(text.runs[start + k] < need for k, need in enumerate(runs)):
        return False
    if not whole:
        return True
    chars = text.chars
    return (start == 0 or chars[start - 1] == " ") and (end == len(chars) or chars[end] == " ")


@dataclass(frozen=True)
class Judgement:
    action: Literal["accept", "mask", "reject"]
    text: str  # the masked text when "mask"


def judge(text: str, automata: Sequence[Automaton]) -> Judgement:
    """The decision for ``text`` against every list in ``automata``: reject, mask or accept. An ASCII text
    none of whose folded letters spell an entry is accepted from the quick fold alone."""
    if text.isascii() and not any(a.may_hit(fold_ascii(text)) for a in automata):
        return Judgement("accept", text)
    hits = _hits(text, automata)
    if not hits:
        return Judgement("accept", text)
    if any(hit.action == "reject" for hit in hits):
        return Judgement("reject", text)
    masked = text
    for _ in range(len(text)):  # each round masks at least one more character: it ends
        masked = _masked(masked, hits)
        if masked.isascii() and not any(a.may_hit(fold_ascii(masked)) for a in automata):
            break
        hits = _hits(masked, automata)
        if not hits:
            break
    return Judgement("mask", masked)


def _hits(text: str, automata: Sequence[Automaton]) -> list[Hit]:
    folded = normalise(text)
    return [hit for a in automata for hit in a.hits(folded)]


def _masked(text: str, hits: Iterable[Hit]) -> str:
    chars = list(text)
    for hit in hits:
        for i in range(hit.start, hit.end):
            if not chars[i].isspace():
                chars[i] = MASK
    return "".join(chars)


class WordLists:
    """Every list a node knows, as the bucket's keys say, and each list's automaton, rebuilt on demand:
    ``apply`` records a change and marks its list stale; ``rebuild`` compiles the stale lists."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {}
        self._automata: dict[str, Automaton] = {}
        self.stale: set[str] = set()

    def apply(self, key: str, entry: Entry | None) -> None:
        """``entry`` put at ``key``, or (None) the key deleted."""
        name = list_of_key(key)
        entries = self._entries.setdefault(name, {})
        if entry is None:
            entries.pop(key, None)
        else:
            entries[key] = entry
        self.stale.add(name)

    def rebuild(self) -> None:
        for name in self.stale:
            entries = self._entries.get(name, {})
            if entries:
                self._automata[name] = Automaton(entries.values())
            else:
                self._automata.pop(name, None)
                self._entries.pop(name, None)
        self.stale = set()

    def automata(self, room: str) -> list[Automaton]:
        """The global list's automaton and ``room``'s (those that have entries)."""
        found = (self._automata.get(GLOBAL), self._automata.get(list_name(room)))
        return [a for a in found if a is not None]

    def sizes(self) -> dict[str, int]:
        return {name: a.size for name, a in self._automata.items()}
