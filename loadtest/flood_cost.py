"""The flood screen's cost per message, pure (no bus): what the live send path adds for the flood rules.

    .venv/bin/python -m parley.loadtest.flood_cost [--users 10000] [--messages 200000] [--reps 5]

One hot room, ``users`` senders, ``messages`` attempts of 3-10 random words (2% with a link), each
``FloodTracker.check`` (with a slow-mode lookup) and, when accepted, ``count`` — the whole per-message
work of ``FloodScreen.screen``/``accepted`` except the escalation writes, which only offences make.
Prints the median microseconds per message over ``reps`` runs (and the spread); asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from parley.live.flood import FloodRules, FloodTracker
from parley.live.screening import Attempt

WORDS = ("goal", "what", "a", "save", "ref", "offside", "come", "on", "blue", "red", "pass", "shot", "keeper",
         "wow", "again", "nice", "corner", "free", "kick", "card", "yellow", "penalty", "var", "half", "time")


def attempts(users: int, messages: int, seed: int) -> list[Attempt]:
    rng = random.Random(seed)
    out, now = [], 1_000_000.0
    for _ in range(messages):
        now += 0.005  # 200 messages a second
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
        if rng.random() < 0.02:
            text += " https://example.com/clip"
        out.append(Attempt("hot", f"u{rng.randrange(users)}", text, now, 10 * 86400.0, False))
    return out


def run(batch: list[Attempt]) -> tuple[float, int]:
    tracker, slow = FloodTracker(FloodRules()), {"hot": 0.0}
    refused = 0
    start = time.perf_counter()
    for a in batch:
        if tracker.check(a, slow.get(a.room, 0.0)) is None:
            tracker.count(a, a.text)
        else:
            refused += 1
    return (time.perf_counter() - start) / len(batch) * 1e6, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    batch = attempts(args.users, args.messages, seed=16)
    results = [run(batch) for _ in range(args.reps)]
    costs = [us for us, _ in results]
    print(f"flood screen, pure: {statistics.median(costs):.1f} µs per message (min {min(costs):.1f}, "
          f"max {max(costs):.1f}; {args.users} users, {args.messages} messages, {results[0][1]} refused)")


if __name__ == "__main__":
    main()
