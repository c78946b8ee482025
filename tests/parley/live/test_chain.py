"""The screening chain: order, first reject wins, masks carry forward, accepted screens are told."""

from __future__ import annotations

from parley.live.chain import run_screens, tell_accepted
from parley.live.screening import ACCEPT, Attempt, Verdict


class Words:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.told: list[str] = []

    async def screen(self, attempt: Attempt) -> Verdict:
        self.seen.append(attempt.text)
        if "bad" in attempt.text:
            return Verdict("mask", text=attempt.text.replace("bad", "***"))
        if "evil" in attempt.text:
            return Verdict("reject", code="banned_word", reason="global list")
        return ACCEPT

    def accepted(self, attempt: Attempt, text: str) -> None:
        self.told.append(text)


class Flood:
    def __init__(self, limit: int) -> None:
        self.limit, self.seen, self.told = limit, [], []  # type: ignore[var-annotated]

    async def screen(self, attempt: Attempt) -> Verdict:
        self.seen.append(attempt.text)
        if len(self.told) >= self.limit and not attempt.moderator:
            return Verdict("reject", code="flooding", retry_after_s=2.0)
        return ACCEPT

    def accepted(self, attempt: Attempt, text: str) -> None:
        self.told.append(text)


def attempt(text: str, moderator: bool = False) -> Attempt:
    return Attempt(room="r", user="u", text=text, now=100.0, account_age_s=3600.0, moderator=moderator)


async def test_no_screens_accepts() -> None:
    assert await run_screens([], attempt("hi")) == ACCEPT


async def test_mask_is_seen_by_later_screens_and_sent() -> None:
    words, flood = Words(), Flood(limit=5)
    verdict = await run_screens([words, flood], attempt("a bad day"))
    assert verdict == Verdict("mask", text="a *** day")
    assert flood.seen == ["a *** day"]


async def test_first_reject_stops_the_chain() -> None:
    words, flood = Words(), Flood(limit=0)
    verdict = await run_screens([words, flood], attempt("evil"))
    assert (verdict.action, verdict.code) == ("reject", "banned_word")
    assert flood.seen == []
    verdict = await run_screens([words, flood], attempt("fine"))
    assert (verdict.action, verdict.code, verdict.retry_after_s) == ("reject", "flooding", 2.0)


async def test_accepted_tells_every_screen_the_text_sent() -> None:
    words, flood = Words(), Flood(limit=1)
    a = attempt("bad")
    verdict = await run_screens([words, flood], a)
    tell_accepted([words, flood], a, verdict.text or a.text)
    assert words.told == flood.told == ["***"]
    assert (await run_screens([words, flood], attempt("x"))).code == "flooding"
    assert await run_screens([words, flood], attempt("x", moderator=True)) == ACCEPT
