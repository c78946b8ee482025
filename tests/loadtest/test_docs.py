"""The docs' generated regions (loadtest/docs.py): the committed docs are what the results files say, and
the rewriting keeps the prose around a region as it is."""

from __future__ import annotations

import pytest
from parley.loadtest.docs import FILES, REGIONS, ROOT, StaleDocs, render


@pytest.mark.parametrize("name", FILES)
def test_committed_docs_are_what_the_results_files_say(name: str) -> None:
    text = (ROOT / name).read_text()
    assert render(text, REGIONS) == text, f"{name} is stale: run `make capacity` (python -m parley.loadtest.docs)"


def test_every_generator_has_a_region_in_the_docs() -> None:
    text = "".join((ROOT / name).read_text() for name in FILES)
    assert [n for n in REGIONS if f"<!-- generated: {n} -->\n" not in text] == []


@pytest.mark.parametrize(("before", "after"), [
    ("prose\n<!-- generated: t -->\nold\n<!-- end generated -->\nmore prose\n",
     "prose\n<!-- generated: t -->\nnew\n<!-- end generated -->\nmore prose\n"),
    ("<!-- generated: t -->\n<!-- end generated -->\n", "<!-- generated: t -->\nnew\n<!-- end generated -->\n"),
    ("quoted in prose, `<!-- generated: … -->` is no marker\n",) * 2,
])
def test_a_region_is_rewritten_and_the_prose_kept(before: str, after: str) -> None:
    assert render(before, {"t": lambda: "new\n"}) == after


@pytest.mark.parametrize("text", [
    "<!-- generated: nobody -->\nx\n<!-- end generated -->\n",  # no generator by that name
    "<!-- generated: t -->\nnever closed\n",
])
def test_an_unknown_or_unclosed_region_is_refused(text: str) -> None:
    with pytest.raises(StaleDocs):
        render(text, {"t": lambda: "new"})
