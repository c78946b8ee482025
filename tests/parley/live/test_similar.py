"""Near-duplicates and links (parley/live/similar.py)."""

from parley.live.similar import MAX_CHARS, links, normalise, shingles, similarity


def sim(a: str, b: str) -> float:
    return similarity(shingles(normalise(a)), shingles(normalise(b)))


def test_case_and_whitespace_do_not_matter():
    assert sim("Buy  NOW\tcheap", "buy now cheap") == 1.0


def test_a_small_change_is_near_and_different_texts_are_far():
    assert sim("free tickets at the gate tonight", "free tickets at the gate tonite") > 0.7
    assert sim("what a goal", "the referee is blind") < 0.2


def test_korean_text_is_compared_too():
    assert sim("대박 골 넣었다", "대박 골 넣었다!!") > 0.7


def test_long_texts_cost_no_more_than_max_chars():
    assert len(normalise("x" * 10_000)) == MAX_CHARS


def test_links_are_counted():
    assert links("no links here. really.") == 0
    assert links("http://a.example.com www.b.org spam.ru/x and c.com") == 4
