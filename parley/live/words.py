"""Banned-word text normalisation: what a message "says" once the usual disguises are taken off.

``normalise(text)`` returns a ``Normalised``: the folded text (``chars``), for each of its characters how
many repeats of it were collapsed (``runs``) and which span of the original text it came from (``spans``:
start, end), so a match on the folded text masks exactly the original characters. The rules, in order
(docs/adr/0019-banned-words.md):

1. NFKC per cluster (a starter with its combining marks and, for old-style Hangul, its conjoining jamo), then
   case folding; accents are dropped from Latin-like letters (``é`` → ``e``) but Hangul syllables stay whole;
   format characters (zero-width spaces and joiners, bidi marks) vanish.
2. Look-alikes and leetspeak become the Latin letter they imitate (``0``→o, ``1``/``l``→i, ``3``→e,
   ``4``/``@``→a, ``5``/``$``→s, ``7``→t, ``8``→b, ``9``→g, Cyrillic and Greek homoglyphs; not ``!``, ``|``
   or ``+``: they end sentences and sums far more often than they spell letters). ``l`` and ``i`` are one
   letter here (a ``1`` may stand for either): entries are folded the same way, so they still meet.
3. Punctuation and symbols between two letters of a word vanish (``b.a.d``, ``b*a*d``); whitespace and
   punctuation elsewhere separate words (one space in ``chars``); two or more single-letter words in a row
   join into one (``b a d``, ``씨 발``).
4. A run of one letter becomes that letter once, its length kept in ``runs`` (``baaad`` → ``bad`` with runs
   1,3,1): the matcher asks that a text run be at least as long as the entry's (``ass`` needs two ``s``, so
   ``as`` is not ``ass``, while ``asss`` is).

Pure: no I/O, no clock. ``normalise(normalise(t).chars).chars == normalise(t).chars`` (tested).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# what a character is taken for once folded (rule 2); the targets are what entries are folded to as well
_LOOKALIKES = {
    "0": "o", "1": "i", "l": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "8": "b",
    "9": "g",
    # Cyrillic (after case folding)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ь": "b", "п": "n", "г": "r",
    # Greek (after case folding)
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ζ": "z",
}
LETTER, SPACE, MARK = 0, 1, 2  # a letter of a word; whitespace; punctuation or a symbol


@dataclass(frozen=True)
class Normalised:
    chars: str  # the folded text: words of letters separated by single spaces
    runs: tuple[int, ...]  # per character of ``chars``: how many repeats it stands for (1 for a space)
    spans: tuple[tuple[int, int], ...]  # per character: [start, end) in the original text

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's [start, end) behind ``chars[start:end]``."""
        return self.spans[start][0], self.spans[end - 1][1]


def _continues(ch: str) -> bool:
    """Whether ``ch`` belongs to the cluster before it (NFKC may compose it with what precedes): a combining
    mark, or a conjoining jamo's medial vowel or final consonant."""
    return bool(unicodedata.combining(ch)) or "\u1160" <= ch <= "\u11ff" or "\ud7b0" <= ch <= "\ud7ff"


@lru_cache(maxsize=1)
def _may_join() -> re.Pattern[str]:
    """A quick test for a character ``_continues`` holds for (built once from Unicode's tables): it spares
    most texts the per-character cluster walk."""
    found = [c for c in (*range(0x30000), *range(0xE0000, 0xE1000)) if _continues(chr(c))]
    ranges, first = [], found[0]
    for prev, cur in zip(found, [*found[1:], -1], strict=True):
        if cur != prev + 1:
            ranges.append(f"{re.escape(chr(first))}-{re.escape(chr(prev))}" if prev > first else re.escape(chr(first)))
            first = cur
    return re.compile("[" + "".join(ranges) + "]")


def _clusters(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not _continues(text[i]):
            out.append((start, i))
            start = i
    return out if text else []


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def _fold_char(ch: str) -> str:
    """Rule 1's accent dropping and rule 2's look-alikes for one case-folded character."""
    if ch in _LOOKALIKES:
        return _LOOKALIKES[ch]
    if ch.isascii() or _is_hangul(ch):
        return ch
    bare = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return "".join(_LOOKALIKES.get(c, c) for c in unicodedata.normalize("NFC", bare)) or ch


def _kind(ch: str) -> int:
    if ch.isalnum():
        return LETTER
    return SPACE if ch.isspace() else MARK


@lru_cache(maxsize=65536)
def _fold_cluster(cluster: str) -> tuple[tuple[str, int], ...]:
    """Rules 1 and 2 for one cluster: its folded characters and their kinds (cached: text repeats)."""
    out = []
    for ch in unicodedata.normalize("NFKC", cluster).casefold():
        if unicodedata.category(ch) == "Cf":  # zero-width and bidi characters
            continue
        for folded in _fold_char(ch):
            if not unicodedata.combining(folded):
                out.append((folded, _kind(folded)))
    return tuple(out)


def _atoms(text: str) -> list[tuple[str, int, int, int]]:
    """(folded character, kind, original start, original end) for each character rules 1 and 2 keep.
    Clusters are looked for only in a text with a character that may join the one before it."""
    single = text.isascii() or not _may_join().search(text)
    clusters = [(i, i + 1) for i in range(len(text))] if single else _clusters(text)
    return [(ch, kind, start, end) for start, end in clusters for ch, kind in _fold_cluster(text[start:end])]


Word = list[tuple[str, int, int]]  # (letter, original start, original end)


def _words(atoms: list[tuple[str, int, int, int]]) -> list[Word]:
    """Rule 3 up to the joining: marks between two letters vanish, anything else separates."""
    inside = _inside_words(atoms)
    words: list[Word] = []
    current: Word = []
    gap = False  # a separator since the last letter
    for i, (ch, kind, start, end) in enumerate(atoms):
        if kind == LETTER:
            if gap and current:
                words.append(current)
                current = []
            gap = False
            current.append((ch, start, end))
        elif kind == SPACE or not inside[i]:
            gap = True
    if current:
        words.append(current)
    return words


def _inside_words(atoms: list[tuple[str, int, int, int]]) -> list[bool]:
    """Per atom: a mark with a letter before it and after it, marks only between (two passes, linear)."""
    before, last = [], SPACE
    for atom in atoms:
        before.append(last)
        last = atom[1] if atom[1] != MARK else last
    inside, last = [False] * len(atoms), SPACE
    for i in range(len(atoms) - 1, -1, -1):
        inside[i] = atoms[i][1] == MARK and before[i] == LETTER and last == LETTER
        last = atoms[i][1] if atoms[i][1] != MARK else last
    return inside


def _joined(words: list[Word]) -> list[Word]:
    """Rule 3's joining: single-letter words in a row (two or more) become one word (a word of one letter
    repeated counts as single: rule 4 makes it one letter, and folding twice must not join more)."""
    out: list[Word] = []
    single_run = False
    for word in words:
        single = len({ch for ch, _, _ in word}) == 1
        if single and single_run:
            out[-1] = out[-1] + word
            continue
        out.append(word)
        single_run = single
    return out


def normalise(text: str) -> Normalised:
    chars: list[str] = []
    runs: list[int] = []
    spans: list[tuple[int, int]] = []
    for n, word in enumerate(_joined(_words(_atoms(text)))):
        if n:
            chars.append(" ")
            runs.append(1)
            spans.append((spans[-1][1], word[0][1]))
        for k, (ch, start, end) in enumerate(word):
            if k and ch == chars[-1]:  # rule 4
                runs[-1] += 1
                spans[-1] = (spans[-1][0], end)
                continue
            chars.append(ch)
            runs.append(1)
            spans.append((start, end))
    return Normalised("".join(chars), tuple(runs), tuple(spans))


_INSIDE = re.compile("(?<=[^\x01 ])\x01+(?=[^\x01 ])")  # marks between two letters (rule 3)
_RUNS = re.compile(r"(.)\1+")


@lru_cache(maxsize=1)
def _ascii_table() -> dict[int, str]:
    """Rules 1 and 2 for each ASCII character, one for one: its folded letter, a space, or ``\x01`` (a mark)."""
    table = {}
    for code in range(128):
        ((folded, kind),) = _fold_cluster(chr(code)) or (("", MARK),)
        table[code] = folded if kind == LETTER else " " if kind == SPACE else "\x01"
    return table


def fold_ascii(text: str) -> str:
    """``normalise(text).chars`` for an ASCII ``text``, at the speed of ``str`` methods and regular expressions
    (no spans or runs): what the matcher tries first, for the common message that matches nothing."""
    words = _INSIDE.sub("", text.translate(_ascii_table())).replace("\x01", " ").split()
    out: list[str] = []
    single_run = False
    for word in words:
        single = len(set(word)) == 1
        if single and single_run:
            out[-1] += word
            continue
        out.append(word)
        single_run = single
    return _RUNS.sub(r"\1", " ".join(out))


def needs_word_boundaries(folded: str) -> bool:
    """Whether an entry matches whole words only by default: yes for scripts that separate words with
    spaces; no for Hangul, CJK and kana, where particles and endings join the word (``씨발놈아``)."""
    return not any(_is_hangul(ch) or 0x3040 <= ord(ch) <= 0x30FF or 0x4E00 <= ord(ch) <= 0x9FFF for ch in folded)
