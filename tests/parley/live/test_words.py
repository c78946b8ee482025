"""The banned-word normaliser and matcher without a server: evasions, Korean, the word-boundary policy,
masking, and properties (idempotent folding; a masked text keeps its length and matches nothing)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.live.banned import Automaton, BadEntry, Entry, entry_key, judge, list_name
from parley.live.words import fold_ascii, normalise

BAD = Automaton([Entry("bad")])
MASKED = Automaton([Entry("darn", "mask")])


@pytest.mark.parametrize("text", [
    "bad", "BAD", "Bad!", "b.a.d", "b a d", "b-a-d", "b*a*d", "baaaad", "bbaadd", "B4D", "b@d", "8ad",
    "bаd",  # Cyrillic а
    "bαd",  # Greek α
    "b\u200bad", "b\u200da\ufeffd",  # zero-width space, joiner, BOM
    "ＢＡＤ",  # full-width (NFKC)
    "bád", "b\u0301ad",  # accents, precomposed or combining
    "that is so bad, really", "you are b a d today", "(bad)",
])
def test_evasions_are_seen_through(text):
    assert judge(text, [BAD]).action == "reject", normalise(text)


@pytest.mark.parametrize("text", [
    "a good day", "badge", "abad", "Baden-Baden", "ba", "b", "bd", "",
    "b ad",  # a single letter next to a word: two words
])
def test_innocent_text_passes(text):
    assert judge(text, [BAD]).action == "accept", normalise(text)


@pytest.mark.parametrize(("entry", "text", "found"), [
    (Entry("cunt"), "Scunthorpe United", False),  # the Scunthorpe problem: whole words only
    (Entry("cunt", substring=True), "Scunthorpe United", True),
    (Entry("ass"), "as soon as you can", False),  # a run is at least as long as the entry's
    (Entry("ass"), "kiss my ass", True),
    (Entry("ass"), "kiss my aaasss", True),
    (Entry("ass"), "a class act", False),
    (Entry("good"), "my god", False),
    (Entry("hell"), "hello there", False),
    (Entry("hell"), "h3ll yes", True),
    (Entry("hell"), "he11 yes", True),  # 1 as l
    (Entry("fish"), "f1sh", True),  # 1 as i
    (Entry("bad word"), "a b.a.d   word here", True),  # phrases: words separated by any spacing
    (Entry("bad word"), "a badword here", False),
])
def test_boundary_and_run_policy(entry, text, found):
    assert (judge(text, [Automaton([entry])]).action == "reject") is found


KOREAN = Automaton([Entry("씨발"), Entry("개새끼", "mask")])


@pytest.mark.parametrize("text", [
    "씨발", "너 정말 씨발이다", "씨 발", "씨.발 놈아", "씨\u200b발", "아 씨-발 진짜", "씨발놈아 꺼져",
])
def test_korean_banned_words_inside_sentences(text):
    assert judge(text, [KOREAN]).action == "reject", normalise(text)


@pytest.mark.parametrize("text", ["씨앗을 심었다", "발을 다쳤다", "안녕하세요 여러분"])
def test_korean_innocent_text_passes(text):
    assert judge(text, [KOREAN]).action == "accept"


def test_korean_masking_hides_the_syllables_and_keeps_the_rest():
    out = judge("이 개 새 끼 야 정말", [KOREAN])
    assert out.action == "mask"
    assert out.text == "이 * * * 야 정말"
    assert judge("저 개새끼는 뭐야", [KOREAN]).text == "저 ***는 뭐야"


@pytest.mark.parametrize(("text", "masked"), [
    ("oh darn it", "oh **** it"),
    ("oh d.a.r.n it", "oh ******* it"),
    ("oh d a r n it", "oh * * * * it"),
    ("DAAARN", "******"),
    ("d4rn and darn", "**** and ****"),
    ("no match here", "no match here"),
])
def test_masking_replaces_exactly_the_offending_characters(text, masked):
    assert judge(text, [MASKED]).text == masked


def test_reject_wins_over_mask_and_lists_combine():
    assert judge("darn, bad", [MASKED, BAD]).action == "reject"
    assert judge("darn", [MASKED, BAD]).action == "mask"


def test_masking_again_when_masking_brings_letters_together():
    # masking "c" would leave "a*b", which folds to "ab": masked as well
    lists = [Automaton([Entry("ab", "mask", substring=True), Entry("c", "mask", substring=True)])]
    out = judge("acb", lists)
    assert out.action == "mask" and judge(out.text, lists).action == "accept"


@pytest.mark.parametrize("word", ["", "...", " ", "x" * 101])
def test_entries_need_letters_and_a_bound(word):
    with pytest.raises(BadEntry):
        Entry(word)


def test_keys_are_one_per_folded_word_and_safe_for_nats():
    assert entry_key("global", "bad") == entry_key("global", "B.A.D")
    assert entry_key("global", "bad") != entry_key("global", "bed")
    assert entry_key("global", "n1") != entry_key("global", "n11")  # runs are part of the entry
    room = list_name("live.Room-1/ü")
    assert room.startswith("room.") and room.replace(".", "").isalnum() and room == room.lower()


def test_ten_thousand_entries_build_and_match():
    automaton = Automaton(Entry(f"w{i:05d}x") for i in range(10_000))
    assert automaton.size == 10_000
    assert judge("hey w01234x there", [automaton]).action == "reject"


TEXT = st.text(alphabet=st.sampled_from("abdrnso 0134@$.*-_аαｂ씨발\u200b\u0301!"), max_size=40)
WORDS = st.lists(st.text(alphabet="abdrnso씨발", min_size=1, max_size=5), min_size=1, max_size=4)


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_normalising_is_idempotent(text):
    once = normalise(text).chars
    assert normalise(once).chars == once


@given(TEXT, WORDS, st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_masked_text_keeps_its_length_and_matches_nothing(text, words, substring):
    lists = [Automaton([Entry(w, "mask", substring) for w in words])]
    out = judge(text, lists)
    assert len(out.text) == len(text)
    assert judge(out.text, lists).action == "accept"
    for a, b in zip(text, out.text, strict=True):
        assert a == b or b == "*"


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60)
       | st.text(alphabet=st.sampled_from("aabl1 .*-_!@$0\t\n\x00"), max_size=40))
@settings(max_examples=500, deadline=None)
def test_the_quick_ascii_fold_is_the_fold(text):
    assert fold_ascii(text) == normalise(text).chars


@given(TEXT)
@settings(max_examples=200, deadline=None)
def test_spans_point_into_the_original(text):
    folded = normalise(text)
    assert len(folded.chars) == len(folded.runs) == len(folded.spans)
    assert all(0 <= s < e <= len(text) for s, e in folded.spans)


def test_word_lists_follow_puts_and_deletes_per_list():
    from parley.live.banned import GLOBAL, WordLists

    lists = WordLists()
    room = list_name("r1")
    lists.apply(entry_key(GLOBAL, "bad"), Entry("bad"))
    lists.apply(entry_key(room, "darn"), Entry("darn", "mask"))
    assert lists.automata("r1") == []  # nothing compiled yet
    lists.rebuild()
    assert judge("bad darn", lists.automata("r1")).action == "reject"
    assert judge("darn", lists.automata("r1")).text == "****"
    assert judge("darn", lists.automata("r2")).action == "accept"  # another room: the global list only
    lists.apply(entry_key(GLOBAL, "B.A.D"), None)  # the same entry, however spelled
    lists.rebuild()
    assert judge("bad", lists.automata("r1")).action == "accept"
    assert lists.sizes() == {room: 1}
