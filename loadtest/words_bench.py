"""What the banned-words screen costs per message with 10k entries: normalising, matching, masking.

    .venv/bin/python -m parley.loadtest.words_bench [--entries 10000] [--room-entries 200] [--messages 2000]
        [--repeats 5] [--seed 16] [--record | --out FILE | --no-save] [--allow-dirty]

Pure CPU in this process (no servers): ``--entries`` seeded entries in the global list (half Latin words of 4
to 9 letters, half Korean words of 2 to 3 syllables, a tenth of each ``mask``) and ``--room-entries`` in one
room's list, compiled as a node compiles them (``parley.live.banned.Automaton``; the compile time of the
global list is what a node pays per change, coalesced). Then for each kind of message (Latin or Korean;
short, about 40 characters, or 500; clean, or with one word to mask and nothing else the lists hold)
``--messages`` seeded messages go through ``judge`` against both lists, ``--repeats`` times: the figure is
the median per message in microseconds, with the normalising alone beside it. Prints the figures and
appends a record to ``loadtest/results/words.jsonl`` (``harness.record``: date, machine with its load
average, commit, versions, args). Nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

import orjson
from parley.loadtest.harness import record

from parley.live.banned import Automaton, Entry, judge
from parley.live.words import normalise

LATIN = "abcdefghijklmnopqrstuvwxyz"
HANGUL = [chr(c) for c in range(0xAC00, 0xAC00 + 2000)]  # common-enough syllables


def latin_word(rng: random.Random) -> str:
    return "".join(rng.choice(LATIN) for _ in range(rng.randint(4, 9)))


def korean_word(rng: random.Random) -> str:
    return "".join(rng.choice(HANGUL) for _ in range(rng.randint(2, 3)))


def entries(rng: random.Random, n: int) -> list[Entry]:
    out = []
    for i in range(n):
        word = latin_word(rng) if i % 2 else korean_word(rng)
        out.append(Entry(word, "mask" if i % 10 < 2 else "reject"))  # a tenth of each script masks
    return out


def message(rng: random.Random, korean: bool, chars: int, banned: str | None) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(korean_word(rng) if korean else latin_word(rng))
    if banned is not None:
        words[rng.randrange(len(words))] = banned
    return " ".join(words)[:chars] if banned is None else " ".join(words)


def typical(rng: random.Random, lists: list[Automaton], korean: bool, chars: int, pool: list[str] | None) -> str:
    """A message that is clean (``pool`` None) or has one word to mask, and nothing else the lists hold (random
    words meet random entries now and then: such a message is drawn again)."""
    want = "accept" if pool is None else "mask"
    while True:
        text = message(rng, korean, chars, rng.choice(pool) if pool else None)
        if judge(text, lists).action == want:
            return text


def per_message_us(texts: list[str], work: Any, repeats: int) -> float:
    rounds = []
    for _ in range(repeats):
        began = time.perf_counter()
        for text in texts:
            work(text)
        rounds.append((time.perf_counter() - began) / len(texts) * 1e6)
    return round(statistics.median(rounds), 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    global_entries, room_entries = entries(rng, args.entries), entries(rng, args.room_entries)
    began = time.perf_counter()
    global_list = Automaton(global_entries)
    compile_ms = (time.perf_counter() - began) * 1000
    lists = [global_list, Automaton(room_entries)]
    masked = [e.word for e in global_entries if e.action == "mask"]
    out: dict[str, Any] = {"entries": global_list.size, "room_entries": args.room_entries,
                           "compile_ms_10k": round(compile_ms, 1), "cases": {}}
    for script in ("latin", "korean"):
        for size, chars in (("short", 40), ("long", 500)):
            pool = [w for w in masked if (w[0] in LATIN) == (script == "latin")]
            for hit in (False, True):
                texts = [typical(rng, lists, script == "korean", chars, pool if hit else None)
                         for _ in range(args.messages)]
                decided = {judge(t, lists).action for t in texts}
                out["cases"][f"{script}_{size}_{'masked' if hit else 'clean'}"] = {
                    "chars": round(statistics.mean(len(t) for t in texts)),
                    "judge_us": per_message_us(texts, lambda t: judge(t, lists), args.repeats),
                    "normalise_us": per_message_us(texts, normalise, args.repeats),
                    "actions": sorted(decided)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=10_000)
    p.add_argument("--room-entries", type=int, default=200)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=16)
    record.add_options(p, "words.jsonl")
    args = p.parse_args(argv)
    rec = record.recorder(p, args)
    out = run(args)
    print(f"{out['entries']} global entries + {out['room_entries']} in the room; compile {out['compile_ms_10k']} ms")
    for name, case in out["cases"].items():
        print(f"  {name:22} {case['chars']:4} chars  judge {case['judge_us']:7.1f} µs  "
              f"normalise {case['normalise_us']:7.1f} µs  {'/'.join(case['actions'])}")
    print(orjson.dumps(out).decode())
    print(rec.append(rec.new_record(args, pyahocorasick=_version()) | {"results": out}))
    return 0


def _version() -> str:
    from importlib.metadata import version
    return version("pyahocorasick")


if __name__ == "__main__":
    sys.exit(main())
